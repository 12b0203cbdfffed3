"""Steering with language neurons, and the fallback curve when a language's neurons are removed.

    from interp.representations.steering import fallback_curve, steering_sweep
    result = steering_sweep(model, tokenizer, facts, selection, means, targets=("ja",),
                            languages=("en", "de"), strengths=(0, 1, 2, 4))
    result.table     # target, language, strength, script_share, accuracy, n, ...
    curve = fallback_curve(model, tokenizer, facts, selection, languages=("ja",))
    curve.table      # language, fraction, n_ablated, accuracy, script_share, fallback_share, ...

Steering (Tang et al. 2024; Gurgurov et al. 2025, arXiv 2507.22608): while the model answers
questions in language L, every neuron (layer, i) of target language X's specific set gets
`strength x mean_X[layer, i]` ADDED to its activation, the input of `down_proj`
(act(gate) * up, the site `MeanActivation(site="post")` averages), at every position, prompt
and generated tokens alike. strength 0 leaves the model exactly as it was. Measured per
strength:
- `script_share`: the share of greedily generated tokens (a few new tokens after
  "Question: {q}\\nAnswer:") whose text is in X's script, among the generated tokens that
  have any script (digits, spaces and punctuation have none, see `char_script`);
- `accuracy`: option scoring (`interp.evaluate.scoring.score_options`) under the same
  steering: the share of items whose argmax option is the correct one.

Fallback: the first `fraction` of L's specific neurons, in order of specificity (lowest LAPE
entropy first, then the highest firing rate in L), are zeroed at the down_proj input (as
`ablate_neurons` does) and L's accuracy and the share of its generated tokens in L's script
and in the fallback script (Latin, English's) are measured.

Scripts are ISO 15924 codes from a small table of Unicode ranges (`SCRIPT_RANGES`): Latn,
Grek, Cyrl, Armn, Hebr, Arab, Deva, Beng, Thai, Hang, Hira, Kana, Hani. A language's script
(`interp.languages.LANGUAGES[code].script`) matches the scripts it is written in: Jpan = Hani +
Hira + Kana, Hans / Hant = Hani, Kore = Hang + Hani (so a Han token counts for Japanese and
Chinese alike).

Intervals: percentile bootstrap over items (a generation's tokens resampled together).
"""

from __future__ import annotations

import bisect
import contextlib
import inspect
import io
import math
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from interp.errors import ConfigError, DataError
from interp.evaluate.scoring import PROMPT_TEMPLATE, score_options
from interp.languages import LANGUAGES
from interp.models import adapters
from interp.representations.patching import _bootstrap_index, _facts_list, _mean_with_interval
from interp.specialization.ablation import _pre_hooks, ablate_neurons, random_like, units_by_layer

if TYPE_CHECKING:
    import torch

    from interp.facts.schema import Fact, FactSet

__all__ = [
    "FALLBACK_COLUMNS",
    "FALLBACK_GENERATION_COLUMNS",
    "SCRIPT_RANGES",
    "STEERING_COLUMNS",
    "STEERING_GENERATION_COLUMNS",
    "FallbackResult",
    "NeuronVector",
    "SteeringResult",
    "add_to_neurons",
    "char_script",
    "fallback_curve",
    "greedy_generate",
    "in_script",
    "language_vector",
    "ordered_units",
    "script_counts",
    "steering_sweep",
    "text_script",
    "token_scripts",
]

# ---------------------------------------------------------------------------------------------
# Unicode scripts

# (first, last code point, ISO 15924): the blocks of the scripts the study's languages use.
# Only letters, marks and numbers in them count (`char_script`); ASCII digits, spaces and
# punctuation belong to no script here.
SCRIPT_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x0041, 0x005A, "Latn"),
    (0x0061, 0x007A, "Latn"),
    (0x00AA, 0x00AA, "Latn"),
    (0x00BA, 0x00BA, "Latn"),
    (0x00C0, 0x024F, "Latn"),  # Latin-1 letters, Extended-A and -B (× and ÷ are not letters)
    (0x0250, 0x02AF, "Latn"),  # IPA extensions
    (0x0370, 0x03FF, "Grek"),
    (0x0400, 0x052F, "Cyrl"),
    (0x0531, 0x058F, "Armn"),
    (0x0590, 0x05FF, "Hebr"),
    (0x0600, 0x06FF, "Arab"),
    (0x0750, 0x077F, "Arab"),
    (0x0870, 0x08FF, "Arab"),
    (0x0900, 0x097F, "Deva"),
    (0x0980, 0x09FF, "Beng"),
    (0x0E00, 0x0E7F, "Thai"),
    (0x1100, 0x11FF, "Hang"),  # Hangul jamo
    (0x1C80, 0x1C8F, "Cyrl"),
    (0x1D00, 0x1D7F, "Latn"),  # phonetic extensions
    (0x1E00, 0x1EFF, "Latn"),  # Latin Extended Additional (Vietnamese)
    (0x1F00, 0x1FFF, "Grek"),
    (0x2C60, 0x2C7F, "Latn"),
    (0x2DE0, 0x2DFF, "Cyrl"),
    (0x2E80, 0x2FDF, "Hani"),  # CJK and Kangxi radicals
    (0x3005, 0x3005, "Hani"),  # 々
    (0x3007, 0x3007, "Hani"),  # 〇
    (0x3021, 0x3029, "Hani"),
    (0x3038, 0x303B, "Hani"),
    (0x3041, 0x309F, "Hira"),
    (0x30A1, 0x30FF, "Kana"),  # with ー (U+30FC), Common in Unicode but only used with kana
    (0x3131, 0x318F, "Hang"),  # Hangul compatibility jamo
    (0x31F0, 0x31FF, "Kana"),
    (0x3400, 0x4DBF, "Hani"),  # CJK Extension A
    (0x4E00, 0x9FFF, "Hani"),  # CJK Unified Ideographs
    (0xA640, 0xA69F, "Cyrl"),
    (0xA720, 0xA7FF, "Latn"),
    (0xA960, 0xA97F, "Hang"),
    (0xAB30, 0xAB6F, "Latn"),
    (0xAC00, 0xD7FF, "Hang"),  # Hangul syllables and jamo extended-B
    (0xF900, 0xFAFF, "Hani"),  # CJK compatibility ideographs
    (0xFB00, 0xFB06, "Latn"),  # ﬀ ligatures
    (0xFB1D, 0xFB4F, "Hebr"),
    (0xFB50, 0xFDFF, "Arab"),  # presentation forms A
    (0xFE70, 0xFEFF, "Arab"),  # presentation forms B
    (0xFF21, 0xFF3A, "Latn"),  # fullwidth Latin
    (0xFF41, 0xFF5A, "Latn"),
    (0xFF66, 0xFF9D, "Kana"),  # halfwidth katakana
    (0xFFA0, 0xFFDC, "Hang"),  # halfwidth Hangul
    (0x1B000, 0x1B16F, "Kana"),  # kana supplement and extended-A (hentaigana)
    (0x20000, 0x323AF, "Hani"),  # CJK Extensions B-H
)
_STARTS = [first for first, _, _ in SCRIPT_RANGES]

# a language's ISO 15924 code -> the scripts its text is written in
_WRITTEN_IN = {
    "Jpan": frozenset({"Hani", "Hira", "Kana"}),
    "Hans": frozenset({"Hani"}),
    "Hant": frozenset({"Hani"}),
    "Kore": frozenset({"Hang", "Hani"}),
}


def char_script(char: str) -> str | None:
    """ISO 15924 script of one character; None for characters of no script here (digits
    0-9, spaces, punctuation, symbols, combining marks of no block listed) and unknown blocks."""
    point = ord(char)
    k = bisect.bisect_right(_STARTS, point) - 1
    if k < 0 or point > SCRIPT_RANGES[k][1]:
        return None
    if unicodedata.category(char)[0] not in "LMN":  # punctuation and symbols inside a block
        return None
    return SCRIPT_RANGES[k][2]


def script_counts(text: str) -> Counter:
    """Characters per script in `text` (characters of no script are not counted)."""
    return Counter(s for s in map(char_script, text) if s is not None)


def text_script(text: str) -> str | None:
    """The script most of `text`'s characters are in (ties: the one met first); None if none."""
    counts = script_counts(text)
    return counts.most_common(1)[0][0] if counts else None


def in_script(script: str | None, target: str) -> bool:
    """Whether a character script (`char_script`) belongs to a language's script `target`
    (ISO 15924 as in the language registry: Jpan covers Hani, Hira and Kana, ...)."""
    return script is not None and script in _WRITTEN_IN.get(target, frozenset({target}))


def token_scripts(tokenizer: Any, ids: Sequence[int]) -> list[str | None]:
    """The script of each token's text (`text_script`). A byte-level token holding part of a
    character decodes to U+FFFD: it is joined with the next tokens (up to 4 in all, one
    UTF-8 character) while that makes the text whole, and every token of the group gets the
    group's script; a token that no such group completes is classified alone."""
    ids = [int(i) for i in ids]
    out: list[str | None] = []
    start = 0
    while start < len(ids):
        for end in range(start + 1, min(start + 4, len(ids)) + 1):
            text = tokenizer.decode(ids[start:end], skip_special_tokens=True)
            if "\ufffd" not in text:
                break
        if "\ufffd" in text:
            end = start + 1
            text = tokenizer.decode(ids[start:end], skip_special_tokens=True)
        out += [text_script(text)] * (end - start)
        start = end
    return out


# ---------------------------------------------------------------------------------------------
# generation


def _pad_id(tokenizer: Any) -> int:
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    return int(pad)


def greedy_generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 5,
    batch_size: int = 8,
) -> list[list[int]]:
    """Greedy continuation ids of each prompt (at most `max_new_tokens`, cut before the first
    eos). Prompts are tokenised as scoring tokenises them (special tokens added), batched by
    length and left-padded (the tokenizer's own padding side is not used).

    A plain argmax loop over the model's KV cache, not `model.generate`: a checkpoint's
    generation_config (repetition penalty, suppressed tokens, sampling) cannot creep in.
    """
    import torch

    if max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens={max_new_tokens}: must be at least 1")
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size}: must be at least 1")
    encoded = [list(ids) for ids in tokenizer(list(prompts))["input_ids"]] if prompts else []
    pad = _pad_id(tokenizer)
    eos = tokenizer.eos_token_id
    device = model.get_input_embeddings().weight.device
    # transformers renamed past_key_values to cache (5.x); use the name this version takes
    accepted = inspect.signature(adapters.unwrap(model).forward).parameters
    cache_name = "cache" if "cache" in accepted else "past_key_values"
    out: list[list[int]] = [[] for _ in encoded]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), batch_size):
            members = order[start : start + batch_size]
            width = max(len(encoded[i]) for i in members)
            ids = torch.full((len(members), width), pad, dtype=torch.long)
            mask = torch.zeros((len(members), width), dtype=torch.long)
            for r, i in enumerate(members):
                ids[r, width - len(encoded[i]) :] = torch.tensor(encoded[i])
                mask[r, width - len(encoded[i]) :] = 1
            ids, mask = ids.to(device), mask.to(device)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            new = torch.empty((len(members), 0), dtype=torch.long, device=device)
            extra: dict[str, Any] = {"logits_to_keep": 1} if "logits_to_keep" in accepted else {}
            with torch.inference_mode():
                for _ in range(max_new_tokens):
                    result = model(
                        input_ids=ids,
                        attention_mask=mask,
                        position_ids=positions,
                        use_cache=True,
                        **extra,
                    )
                    extra[cache_name] = getattr(result, cache_name)
                    token = result.logits[:, -1].argmax(-1)
                    new = torch.cat([new, token[:, None]], dim=1)
                    if eos is not None and bool((new == eos).any(dim=1).all()):
                        break
                    ids = token[:, None]
                    mask = torch.cat([mask, mask.new_ones((len(members), 1))], dim=1)
                    positions = positions[:, -1:] + 1
            for r, i in enumerate(members):
                row = new[r].tolist()
                out[i] = row[: row.index(eos)] if eos is not None and eos in row else row
    finally:
        model.train(was_training)
    return out


def _script_hits(
    tokenizer: Any, generations: Sequence[Sequence[int]], targets: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(hits [items, targets], scripted tokens [items], texts): per generation, how many of
    its tokens are in each target script, and how many have a script at all."""
    hits = np.zeros((len(generations), len(targets)), dtype=np.int64)
    total = np.zeros(len(generations), dtype=np.int64)
    texts = []
    for g, ids in enumerate(generations):
        scripts = [s for s in token_scripts(tokenizer, ids) if s is not None]
        total[g] = len(scripts)
        for t, target in enumerate(targets):
            hits[g, t] = sum(in_script(s, target) for s in scripts)
        texts.append(tokenizer.decode(list(ids), skip_special_tokens=True))
    return hits, total, texts


# ---------------------------------------------------------------------------------------------
# steering vectors and hooks


@dataclass(frozen=True)
class NeuronVector:
    """What to add to the down_proj input: `units[layer] = (neuron indices, values)`."""

    language: str
    units: Mapping[int, tuple[tuple[int, ...], tuple[float, ...]]]

    @property
    def n_units(self) -> int:
        return sum(len(idx) for idx, _ in self.units.values())


def _mean_arrays(means: Any, languages: Sequence[str] | None) -> tuple[np.ndarray, tuple[str, ...]]:
    """(array [languages, layers, neurons], languages) from a MeanActivation, a mapping
    {language: [layers, neurons]} or an array with `languages`."""
    if hasattr(means, "means") and hasattr(means, "languages"):  # a MeanActivation
        site = getattr(means, "site", "post")
        if site != "post":
            raise ConfigError(
                f"means: a MeanActivation of site {site!r}; steering adds to the down_proj "
                "input. Fix: collect MeanActivation(..., site='post')"
            )
        return np.asarray(means.means(), dtype=np.float64), tuple(means.languages)
    if isinstance(means, Mapping):
        codes = tuple(means)
        return np.stack([np.asarray(means[c], dtype=np.float64) for c in codes]), codes
    if languages is None:
        raise ConfigError(
            "means: an array needs mean_languages= (its first axis). Fix: pass the languages, "
            "a {language: [layers, neurons]} mapping or a MeanActivation"
        )
    array = np.asarray(means, dtype=np.float64)
    if array.ndim != 3 or array.shape[0] != len(languages):
        raise ConfigError(
            f"means: shape {array.shape}; expected [{len(languages)} languages, layers, neurons]"
        )
    return array, tuple(languages)


def _unit_set(selection: Any, language: str) -> list[tuple[int, int]]:
    sets = selection.sets() if hasattr(selection, "sets") else selection
    if language not in sets:
        raise DataError(
            f"language {language!r} has no neuron set in the selection (it has "
            f"{', '.join(sets)}). Fix: select neurons for it first"
        )
    return sorted((int(a), int(b)) for a, b in sets[language])


def language_vector(
    selection: Any,
    means: Any,
    language: str,
    *,
    mean_languages: Sequence[str] | None = None,
) -> NeuronVector:
    """Language `language`'s mean activation on its own specific neurons.

    `selection`: a NeuronSelection or {language: set of (layer, neuron)}. `means`: a
    `MeanActivation` (site "post"), {language: [layers, neurons]}, or an array
    [languages, layers, neurons] with `mean_languages`.
    """
    array, codes = _mean_arrays(means, mean_languages)
    if language not in codes:
        raise DataError(
            f"no mean activations for {language!r} (means cover {', '.join(codes)}). Fix: "
            "collect MeanActivation over that language's text too"
        )
    row = array[codes.index(language)]
    grouped: dict[int, list[int]] = {}
    for layer, neuron in _unit_set(selection, language):
        if not (0 <= layer < row.shape[0] and 0 <= neuron < row.shape[1]):
            raise ConfigError(
                f"neuron ({layer}, {neuron}) of {language!r}: outside the means' "
                f"{row.shape[0]} layers x {row.shape[1]} neurons"
            )
        grouped.setdefault(layer, []).append(neuron)
    units = {
        layer: (tuple(idx), tuple(float(row[layer, i]) for i in idx))
        for layer, idx in sorted(grouped.items())
    }
    return NeuronVector(language, units)


@contextlib.contextmanager
def add_to_neurons(model: Any, vector: NeuronVector, strength: float = 1.0) -> Iterator[None]:
    """Inside the block, neuron (layer, i) of `vector` has `strength x value` added to its
    activation act(gate) * up (the down_proj input), at every position. Adding, not replacing:
    strength 0 leaves every output as it was."""
    import torch

    size = adapters.shape(model)
    units_by_layer(  # every neuron inside the model, or a ConfigError naming it
        [(layer, i) for layer, (idx, _) in vector.units.items() for i in idx],
        size.num_layers,
        size.intermediate_size,
        f"neurons of {vector.language!r}",
    )

    def make(idx: tuple[int, ...], values: tuple[float, ...]):
        index = torch.tensor(idx, dtype=torch.long)
        added = torch.tensor(values, dtype=torch.float64) * float(strength)
        cache: dict[Any, tuple[torch.Tensor, torch.Tensor]] = {}

        def fn(x: torch.Tensor) -> torch.Tensor:
            key = (x.device, x.dtype)
            if key not in cache:
                cache[key] = (index.to(x.device), added.to(x.device, x.dtype))
            i, v = cache[key]
            out = x.clone()
            out[..., i] += v
            return out

        return fn

    hooks = [
        (adapters.down_proj(model, layer), make(idx, values))
        for layer, (idx, values) in vector.units.items()
        if idx
    ]
    with _pre_hooks(hooks):
        yield


# ---------------------------------------------------------------------------------------------
# measuring one condition


def _items(fact_list: list[Fact], languages: Sequence[str]) -> list[Any]:
    out = []
    for code in languages:
        for fact in fact_list:
            if code not in fact.items:
                raise DataError(
                    f"fact {fact.fact_id!r} has no item in {code!r}. Fix: pass facts that "
                    "exist in every language measured"
                )
            out.append(fact.items[code])
    return out


def _measure(
    model: Any,
    tokenizer: Any,
    items: list[Any],
    *,
    prompt_template: str,
    max_new_tokens: int,
    batch_size: int,
) -> dict[str, Any]:
    """One condition (hooks already in place): greedy generations and option correctness."""
    prompts = [prompt_template.format(question=it.question) for it in items]
    generations = greedy_generate(
        model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size
    )
    scored = score_options(
        model,
        tokenizer,
        items,
        batch_size=batch_size,
        prompt_template=prompt_template,
        progress=False,
    )
    correct = np.array(
        [
            int(np.argmax(s)) == a
            for s, a in zip(scored["scores"], scored["answer_index"], strict=True)
        ],
        dtype=float,
    )
    return {"generations": generations, "correct": correct}


def _share(
    hits: np.ndarray, total: np.ndarray, index: np.ndarray | None, ci: float
) -> tuple[float, float, float]:
    """Pooled share sum(hits) / sum(total), with its bootstrap interval over items."""
    ratio = np.divide(hits, total, out=np.zeros(len(hits), dtype=float), where=total > 0)
    value, lo, hi, _ = _mean_with_interval(ratio, index, ci, total.astype(float))
    return value, lo, hi


def _accuracy(correct: np.ndarray, index: np.ndarray | None, ci: float):
    value, lo, hi, _ = _mean_with_interval(correct, index, ci)
    return value, lo, hi


# ---------------------------------------------------------------------------------------------
# steering sweep


STEERING_COLUMNS = [
    "target",
    "language",
    "strength",
    "script_share",
    "script_share_lo",
    "script_share_hi",
    "accuracy",
    "accuracy_lo",
    "accuracy_hi",
    "n",
    "n_tokens",
    "n_units",
]
STEERING_GENERATION_COLUMNS = [
    "target",
    "language",
    "strength",
    "fact_id",
    "text",
    "n_tokens",
    "n_in_script",
    "correct",
]
FALLBACK_GENERATION_COLUMNS = [
    "language",
    "control",
    "repeat",
    "fraction",
    "fact_id",
    "text",
    "n_tokens",
    "n_in_script",
    "n_in_fallback",
    "correct",
]


@dataclass
class SteeringResult:
    """`table`: one row per (target, language, strength); script_share = share of generated
    tokens with a script that are in the target's script; accuracy = option-scoring accuracy;
    *_lo / *_hi = bootstrap interval over items; n = items; n_tokens = generated tokens with a
    script; n_units = neurons steered. `generations`: one row per (target, language, strength,
    fact): the generated text, its tokens with a script (n_tokens), those in the target's
    script (n_in_script), and whether option scoring got the item right."""

    table: pd.DataFrame
    generations: pd.DataFrame
    params: dict[str, Any] = field(default_factory=dict)

    def save(self, folder: str | Path) -> Path:
        return _save(folder, self.table, self.generations, self.params)


def _save(folder: str | Path, table: pd.DataFrame, generations: pd.DataFrame, params) -> Path:
    from interp.io import atomic_write_json, atomic_write_text

    folder = Path(folder)
    for name, frame in (("table", table), ("generations", generations)):
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        atomic_write_text(folder / f"{name}.csv", buffer.getvalue())
    atomic_write_json(folder / "meta.json", {"params": params})
    return folder


def _script_of(code: str) -> str:
    if code not in LANGUAGES:
        raise DataError(f"language {code!r} is not in the registry (interp.languages)")
    return LANGUAGES[code].script


def _check_common(strengths_or_fractions: Sequence[float], what: str, batch_size: int) -> None:
    if not len(strengths_or_fractions):
        raise ConfigError(f"{what}: none given. Fix: pass at least one value")
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size}: must be at least 1")


def steering_sweep(
    model: Any,
    tokenizer: Any,
    facts: FactSet | Iterable[Fact],
    selection: Any,
    means: Any,
    *,
    targets: Sequence[str],
    languages: Sequence[str] | None = None,
    strengths: Sequence[float] = (0.0, 1.0, 2.0, 4.0),
    mean_languages: Sequence[str] | None = None,
    max_new_tokens: int = 5,
    batch_size: int = 8,
    prompt_template: str = PROMPT_TEMPLATE,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    progress: bool = True,
) -> SteeringResult:
    """Steer towards each target language X at each strength while the model answers the
    facts' questions in each of `languages` (default: the FactSet's languages).

    `selection`: a NeuronSelection or {language: set of (layer, neuron)}; `means`: mean
    activations at the down_proj input (a MeanActivation, {language: [layers, neurons]}, or
    an array with `mean_languages`). Each (target, strength) runs all languages' items in one
    pooled generation and one pooled scoring pass.
    """
    from tqdm.auto import tqdm

    _check_common(strengths, "strengths", batch_size)
    fact_list = _facts_list(facts)
    if languages is None:
        languages = getattr(facts, "languages", None) or tuple(fact_list[0].items)
    languages = tuple(languages)
    targets = tuple(targets)
    if not targets:
        raise ConfigError("targets: none given. Fix: name the languages to steer towards")
    vectors = {
        x: language_vector(selection, means, x, mean_languages=mean_languages) for x in targets
    }
    items = _items(fact_list, languages)
    n_facts = len(fact_list)
    index = _bootstrap_index(n_facts, n_boot, seed)

    rows, generations = [], []
    conditions = [(x, float(s)) for x in targets for s in strengths]
    for target, strength in tqdm(conditions, desc="steering", disable=not progress):
        with add_to_neurons(model, vectors[target], strength):
            got = _measure(
                model,
                tokenizer,
                items,
                prompt_template=prompt_template,
                max_new_tokens=max_new_tokens,
                batch_size=batch_size,
            )
        hits_all, total_all, texts = _script_hits(
            tokenizer, got["generations"], [_script_of(target)]
        )
        for k, code in enumerate(languages):
            part = slice(k * n_facts, (k + 1) * n_facts)
            hits, total = hits_all[part, 0], total_all[part]
            share, share_lo, share_hi = _share(hits, total, index, ci)
            accuracy, acc_lo, acc_hi = _accuracy(got["correct"][part], index, ci)
            rows.append(
                {
                    "target": target,
                    "language": code,
                    "strength": strength,
                    "script_share": share,
                    "script_share_lo": share_lo,
                    "script_share_hi": share_hi,
                    "accuracy": accuracy,
                    "accuracy_lo": acc_lo,
                    "accuracy_hi": acc_hi,
                    "n": n_facts,
                    "n_tokens": int(total.sum()),
                    "n_units": vectors[target].n_units,
                }
            )
            for j, fact in enumerate(fact_list):
                g = k * n_facts + j
                generations.append(
                    {
                        "target": target,
                        "language": code,
                        "strength": strength,
                        "fact_id": fact.fact_id,
                        "text": texts[g],
                        "n_tokens": int(total_all[g]),
                        "n_in_script": int(hits_all[g, 0]),
                        "correct": bool(got["correct"][g]),
                    }
                )
    params = {
        "model": getattr(adapters.unwrap(model).config, "_name_or_path", ""),
        "site": "down_proj input (act(gate) * up), added at every position",
        "targets": list(targets),
        "languages": list(languages),
        "strengths": [float(s) for s in strengths],
        "max_new_tokens": max_new_tokens,
        "prompt_template": prompt_template,
        "n_facts": n_facts,
        "n_boot": n_boot,
        "ci": ci,
        "seed": seed,
    }
    return SteeringResult(
        pd.DataFrame(rows, columns=STEERING_COLUMNS),
        pd.DataFrame(generations, columns=STEERING_GENERATION_COLUMNS),
        params,
    )


# ---------------------------------------------------------------------------------------------
# fallback curve


FALLBACK_COLUMNS = [
    "language",
    "control",
    "repeat",
    "fraction",
    "n_ablated",
    "n_units",
    "accuracy",
    "accuracy_lo",
    "accuracy_hi",
    "script_share",
    "script_share_lo",
    "script_share_hi",
    "fallback_share",
    "fallback_share_lo",
    "fallback_share_hi",
    "n",
    "n_tokens",
]


@dataclass
class FallbackResult:
    """`table`: one row per (language, control, repeat, fraction): n_ablated of the language's
    n_units specific neurons zeroed (control "selected": the most specific first; "random": as
    many random neurons in each layer as the selected ones there); accuracy; script_share =
    share of generated tokens (with a script) in the language's own script; fallback_share =
    ... in the fallback script (Latin); intervals over items. `generations`: one row per
    (language, control, repeat, fraction, fact): text, n_tokens (with a script), n_in_script,
    n_in_fallback, correct."""

    table: pd.DataFrame
    generations: pd.DataFrame
    params: dict[str, Any] = field(default_factory=dict)

    def save(self, folder: str | Path) -> Path:
        return _save(folder, self.table, self.generations, self.params)


def ordered_units(selection: Any, language: str) -> list[tuple[int, int]]:
    """`language`'s specific neurons, most specific first.

    A NeuronSelection: lowest LAPE entropy first, then the highest rate p in the language,
    then (layer, neuron); rows with no entropy (imported selections) go last. A mapping:
    a list or tuple is taken in its own order, a set in (layer, neuron) order.
    """
    table = getattr(selection, "table", None)
    if isinstance(table, pd.DataFrame) and {"entropy", "p", "neuron"} <= set(table.columns):
        rows = table[table["language"] == language]
        if rows.empty and language not in getattr(selection, "languages", ()):
            raise DataError(f"language {language!r} has no neuron set in the selection")
        rows = rows.assign(_missing=rows["entropy"].isna()).sort_values(
            ["_missing", "entropy", "p", "layer", "neuron"],
            ascending=[True, True, False, True, True],
            kind="stable",
        )
        return [(int(a), int(b)) for a, b in zip(rows["layer"], rows["neuron"], strict=True)]
    if not isinstance(selection, Mapping) or language not in selection:
        raise DataError(f"language {language!r} has no neuron set in the selection")
    units = selection[language]
    if isinstance(units, list | tuple):
        return [(int(a), int(b)) for a, b in units]
    return sorted((int(a), int(b)) for a, b in units)


def _first(units: list[tuple[int, int]], fraction: float) -> list[tuple[int, int]]:
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"fraction {fraction}: must lie in [0, 1]")
    return units[: int(math.floor(fraction * len(units) + 0.5))]


def fallback_curve(
    model: Any,
    tokenizer: Any,
    facts: FactSet | Iterable[Fact],
    selection: Any,
    *,
    languages: Sequence[str] | None = None,
    fractions: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
    fallback_script: str = "Latn",
    random_repeats: int = 0,
    max_new_tokens: int = 5,
    batch_size: int = 8,
    prompt_template: str = PROMPT_TEMPLATE,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    progress: bool = True,
) -> FallbackResult:
    """Zero a growing share of each language's specific neurons (most specific first) and
    measure its accuracy and the script of its generations (own script vs `fallback_script`).

    `selection`: a NeuronSelection or {language: neurons} (see `ordered_units`).
    `random_repeats`: per language and fraction, that many random sets with as many neurons in
    each layer as the selected ones (a control; 0 = none). The unablated condition is run once
    for all languages together.
    """
    from tqdm.auto import tqdm

    _check_common(fractions, "fractions", batch_size)
    if random_repeats < 0:
        raise ConfigError(f"random_repeats={random_repeats}: must be 0 or more")
    fact_list = _facts_list(facts)
    if languages is None:
        declared = getattr(facts, "languages", None) or tuple(fact_list[0].items)
        languages = tuple(c for c in declared if c != "en")
    languages = tuple(languages)
    size = adapters.shape(model)
    units = {code: ordered_units(selection, code) for code in languages}
    for code, items in units.items():  # fail before any forward pass
        units_by_layer(items, size.num_layers, size.intermediate_size, f"neurons of {code!r}")
    n_facts = len(fact_list)
    index = _bootstrap_index(n_facts, n_boot, seed)
    rng = np.random.default_rng(seed)
    measure = {
        "prompt_template": prompt_template,
        "max_new_tokens": max_new_tokens,
        "batch_size": batch_size,
    }

    def scripts_of(code: str) -> list[str]:
        return [_script_of(code), fallback_script]

    conditions = []  # (language, control, repeat, fraction, ablated units)
    for code in languages:
        for fraction in fractions:
            chosen = _first(units[code], float(fraction))
            if chosen:
                conditions.append((code, "selected", 0, float(fraction), chosen))
                conditions += [
                    (
                        code,
                        "random",
                        r,
                        float(fraction),
                        sorted(random_like(chosen, size.intermediate_size, rng)),
                    )
                    for r in range(random_repeats)
                ]
    results: dict[tuple[str, str, int, float], dict[str, Any]] = {}
    bar = tqdm(total=len(conditions) + 1, desc="fallback", disable=not progress)
    # unablated: every language in one pooled pass (its own and the fallback script per item)
    pooled = _items(fact_list, languages)
    base = _measure(model, tokenizer, pooled, **measure)
    for k, code in enumerate(languages):
        part = slice(k * n_facts, (k + 1) * n_facts)
        hits, total, texts = _script_hits(tokenizer, base["generations"][part], scripts_of(code))
        results[(code, "none", 0, 0.0)] = {
            "hits": hits,
            "total": total,
            "texts": texts,
            "correct": base["correct"][part],
            "n_ablated": 0,
        }
    bar.update()
    for code, control, repeat, fraction, chosen in conditions:
        with ablate_neurons(model, chosen):
            got = _measure(model, tokenizer, _items(fact_list, [code]), **measure)
        hits, total, texts = _script_hits(tokenizer, got["generations"], scripts_of(code))
        results[(code, control, repeat, fraction)] = {
            "hits": hits,
            "total": total,
            "texts": texts,
            "correct": got["correct"],
            "n_ablated": len(chosen),
        }
        bar.update()
    bar.close()

    rows, generations = [], []
    for code in languages:
        controls = [("selected", 0)] + [("random", r) for r in range(random_repeats)]
        for control, repeat in controls:
            for fraction in fractions:
                key = (code, control, repeat, float(fraction))
                got = results.get(key)
                if got is None:  # nothing ablated: the unablated run
                    got = results[(code, "none", 0, 0.0)]
                hits, total = got["hits"], got["total"]
                acc = _accuracy(got["correct"], index, ci)
                own = _share(hits[:, 0], total, index, ci)
                fallback = _share(hits[:, 1], total, index, ci)
                rows.append(
                    {
                        "language": code,
                        "control": control,
                        "repeat": repeat,
                        "fraction": float(fraction),
                        "n_ablated": got["n_ablated"],
                        "n_units": len(units[code]),
                        "accuracy": acc[0],
                        "accuracy_lo": acc[1],
                        "accuracy_hi": acc[2],
                        "script_share": own[0],
                        "script_share_lo": own[1],
                        "script_share_hi": own[2],
                        "fallback_share": fallback[0],
                        "fallback_share_lo": fallback[1],
                        "fallback_share_hi": fallback[2],
                        "n": n_facts,
                        "n_tokens": int(total.sum()),
                    }
                )
                for j, fact in enumerate(fact_list):
                    generations.append(
                        {
                            "language": code,
                            "control": control,
                            "repeat": repeat,
                            "fraction": float(fraction),
                            "fact_id": fact.fact_id,
                            "text": got["texts"][j],
                            "n_tokens": int(total[j]),
                            "n_in_script": int(hits[j, 0]),
                            "n_in_fallback": int(hits[j, 1]),
                            "correct": bool(got["correct"][j]),
                        }
                    )
    params = {
        "model": getattr(adapters.unwrap(model).config, "_name_or_path", ""),
        "site": "down_proj input (act(gate) * up) := 0",
        "order": "lowest LAPE entropy first, then highest p",
        "languages": list(languages),
        "fractions": [float(f) for f in fractions],
        "fallback_script": fallback_script,
        "random_repeats": random_repeats,
        "max_new_tokens": max_new_tokens,
        "prompt_template": prompt_template,
        "n_facts": n_facts,
        "n_boot": n_boot,
        "ci": ci,
        "seed": seed,
    }
    return FallbackResult(
        pd.DataFrame(rows, columns=FALLBACK_COLUMNS),
        pd.DataFrame(generations, columns=FALLBACK_GENERATION_COLUMNS),
        params,
    )
