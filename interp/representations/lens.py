"""The logit lens (nostalgebraist 2020; as used by Wendler et al. 2024, "Do Llamas Work in
English?"): each layer's residual at the last prompt token, decoded through the model's final
norm and LM head.

    from interp.representations import logit_lens
    lens = logit_lens(model, tokenizer, facts.split("test"), ["en", "de", "ja"], n_boot=1000)
    lens.table   # language, layer, metric, group, value, lo, hi, n
    lens.items   # fact_id, language, layer, english_token, language_token, same_token,
                 #   p_english_answer, p_language_answer, rank_english_answer, rank_language_answer
    compare_lens(base_lens, tuned_lens)   # paired change per (language, layer, metric)

For the question of fact f in language L (prompt "Question: {q}\\nAnswer:", the scoring
prompt), at every residual index (0 = embeddings .. num_layers = the model's own output):
- `p_english_answer`: the probability of the first token of the English item's answer text;
- `p_language_answer`: that of the first token of L's answer text;
- `rank_english_answer`, `rank_language_answer`: their ranks (1 = the top token; 1 + the
  number of tokens with a strictly higher logit).
The first token is the one the evaluation scores first: the tokens of prompt + " " + answer
beyond the prompt's (`interp.evaluate.scoring.encode_options`), so the answer is tokenised in
the context it is scored in. Where both answers start with the same token (`same_token`, e.g.
same-label items) the two probabilities coincide; `by` separates such items.
The table gives each measure's mean over facts with a percentile bootstrap interval (resample
of facts from `seed` alone, as in `alignment.py`; within each group for `by` groups).

At the last residual index the lens is the model's output distribution (the final norm and
head are the model's own); earlier layers are read as if they were the last, which favours
late layers (the tuned lens corrects this; not done here). Memory: per batch one layer's
[batch, vocabulary] logits at a time, and per item one number per layer and measure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from interp.errors import ConfigError, DataError
from interp.representations.alignment import (
    ALL,
    _check_ci,
    _interval,
    bootstrap_weights,
    item_groups,
)

if TYPE_CHECKING:
    import torch

    from interp.facts.schema import FactSet

__all__ = [
    "COMPARE_LENS_COLUMNS",
    "LENS_COLUMNS",
    "LENS_METRICS",
    "LogitLens",
    "answer_tokens",
    "compare_lens",
    "decode",
    "lens_table",
    "logit_lens",
]

LENS_METRICS = (
    "p_english_answer",
    "p_language_answer",
    "rank_english_answer",
    "rank_language_answer",
)
LENS_COLUMNS = ["language", "layer", "metric", "group", "value", "lo", "hi", "n"]
_LOGIT_ELEMENTS = 1 << 26  # logits decoded at once (256 MB in float32)
ITEM_COLUMNS = [
    "fact_id",
    "language",
    "layer",
    "english_token",
    "language_token",
    "same_token",
    *LENS_METRICS,
]


@dataclass
class LogitLens:
    """Per-item lens readings (`items`) and their means with intervals (`table`)."""

    table: pd.DataFrame
    items: pd.DataFrame


def decode(model: Any, hidden: torch.Tensor) -> torch.Tensor:
    """Vocabulary logits of residual vectors [..., hidden]: the final norm, the LM head, and
    the logit scaling or soft-capping the model's config declares (float32)."""
    import torch

    from interp.representations.residual import final_norm, unembed

    norm, head = final_norm(model), unembed(model)
    dtype = head.weight.dtype
    with torch.inference_mode():
        logits = head(norm(hidden.to(head.weight.device, dtype))).float()
        config = model.config
        scale = getattr(config, "logit_scale", None)
        if scale:
            logits = logits * scale
        cap = getattr(config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
    return logits


def answer_tokens(tokenizer: Any, prompt: str, answers: Sequence[str]) -> list[int]:
    """The first token id of each answer as scored after `prompt` (prompt + " " + answer)."""
    from interp.evaluate.scoring import encode_options

    return [e.input_ids[e.option_start] for e in encode_options(tokenizer, prompt, answers)]


def _targets(tokenizer, facts, language, english, template):
    prompts, en_tokens, lang_tokens = [], [], []
    items = []
    for fact in facts:
        item, reference = fact.items.get(language), fact.items.get(english)
        if item is None or reference is None:
            missing = language if item is None else english
            raise DataError(
                f"fact {fact.fact_id!r} has no item in {missing!r}. Fix: restrict the facts to "
                "those present in every language asked for (and in English)"
            )
        prompt = template.format(question=item.question)
        prompts.append(prompt)
        items.append((prompt, [reference.answer_text, item.answer_text]))
    from interp.evaluate.scoring import encode_many

    for encoded in encode_many(tokenizer, items):
        en_tokens.append(encoded[0].input_ids[encoded[0].option_start])
        lang_tokens.append(encoded[1].input_ids[encoded[1].option_start])
    return prompts, np.asarray(en_tokens), np.asarray(lang_tokens)


def logit_lens(
    model: Any,
    tokenizer: Any,
    facts: FactSet,
    languages: Iterable[str],
    *,
    english: str = "en",
    prompt_template: str | None = None,
    layers: Iterable[int] | None = None,
    by: pd.DataFrame | None = None,
    by_column: str | None = None,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    batch_size: int = 16,
    **kwargs: Any,
) -> LogitLens:
    """The logit lens on every fact's question in each of `languages` (see the module
    docstring). `layers`: residual indices (default all). `by`: fact_id, language and a
    group column (e.g. exposure classes): the table is also given per group. `kwargs` go to
    `iter_residuals` (padding_side, device, sort_window)."""
    import torch

    from interp.representations.residual import iter_residuals, unembed

    _check_ci(n_boot, ci)
    if prompt_template is None:
        from interp.evaluate.scoring import PROMPT_TEMPLATE

        prompt_template = PROMPT_TEMPLATE
    codes = list(dict.fromkeys(languages))
    if not codes:
        raise ConfigError("logit_lens got no languages. Fix: name at least one")
    fact_ids = [str(f.fact_id) for f in facts]
    n = len(fact_ids)
    if n == 0:
        raise DataError("logit_lens got no facts. Fix: pass a non-empty FactSet")

    frames = []
    for code in codes:
        prompts, en_ids, lang_ids = _targets(tokenizer, facts, code, english, prompt_template)
        values: np.ndarray | None = None  # [facts, layers, 4]
        kept: tuple[int, ...] = ()
        for batch in iter_residuals(
            model,
            tokenizer,
            prompts,
            position="last",
            layers=layers,
            batch_size=batch_size,
            out_device=None,
            **kwargs,
        ):
            kept = batch.layers
            if values is None:
                values = np.empty((n, len(kept), len(LENS_METRICS)))
            device = batch.vectors.device
            en_t = torch.as_tensor(en_ids[batch.index], device=device)
            lang_t = torch.as_tensor(lang_ids[batch.index], device=device)
            size, vocab = len(batch.index), unembed(model).weight.shape[0]
            step = max(1, _LOGIT_ELEMENTS // (size * vocab))  # layers decoded at once
            for k0 in range(0, len(kept), step):
                logits = decode(model, batch.vectors[:, k0 : k0 + step]).to(device)  # [b, c, V]
                norm = torch.logsumexp(logits, dim=-1)
                columns = []
                for target in (en_t, lang_t):
                    own = logits.gather(-1, target[:, None, None].expand(-1, logits.shape[1], 1))
                    columns.append((own[..., 0] - norm).exp())
                    columns.append((logits > own).sum(-1).float() + 1)
                out = torch.stack([columns[0], columns[2], columns[1], columns[3]], -1)
                values[batch.index, k0 : k0 + step] = out.double().cpu().numpy()
        if values is None:  # pragma: no cover - n > 0 facts give at least one batch
            raise DataError(f"logit_lens: no prompts in {code!r}")
        for k, layer in enumerate(kept):
            frame = pd.DataFrame(
                {
                    "fact_id": fact_ids,
                    "language": code,
                    "layer": layer,
                    "english_token": en_ids,
                    "language_token": lang_ids,
                    "same_token": en_ids == lang_ids,
                }
            )
            for m, metric in enumerate(LENS_METRICS):
                frame[metric] = values[:, k, m]
            frames.append(frame)
    items = pd.concat(frames, ignore_index=True)[ITEM_COLUMNS]
    return LogitLens(
        lens_table(items, by=by, by_column=by_column, n_boot=n_boot, ci=ci, seed=seed), items
    )


def lens_table(
    items: pd.DataFrame,
    *,
    by: pd.DataFrame | None = None,
    by_column: str | None = None,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Mean of each lens measure per (language, layer) over facts, with percentile bootstrap
    intervals; per group too when `by` is given. `items`: `LogitLens.items`."""
    _check_ci(n_boot, ci)
    rows = []
    resamples: dict[tuple[int, str], np.ndarray] = {}
    for (code, layer), part in items.groupby(["language", "layer"], sort=False):
        fact_ids = part["fact_id"].astype(str).to_numpy()
        n = len(fact_ids)
        selections = [(ALL, np.arange(n))]
        groups = item_groups(by, fact_ids, code, by_column)
        if groups is not None:
            for group in sorted({g for g in groups if g is not None}, key=str):
                selections.append((group, np.flatnonzero(groups == group)))
        for group, members in selections:
            key = (len(members), str(group))
            if key not in resamples:
                resamples[key] = bootstrap_weights(len(members), n_boot, seed, str(group))
            weights = resamples[key]
            for metric in LENS_METRICS:
                sample = part[metric].to_numpy(dtype=float)[members]
                value = float(sample.mean())
                lo, hi = (
                    _interval(weights @ sample / len(members), ci)
                    if n_boot
                    else (float("nan"), float("nan"))
                )
                rows.append((code, int(layer), metric, str(group), value, lo, hi, len(members)))
    return pd.DataFrame(rows, columns=LENS_COLUMNS)


COMPARE_LENS_COLUMNS = [
    "language",
    "layer",
    "metric",
    "group",
    "baseline",
    "value",
    "delta",
    "lo",
    "hi",
    "p_value",
    "n",
]


def compare_lens(
    baseline: LogitLens,
    other: LogitLens,
    *,
    by: pd.DataFrame | None = None,
    by_column: str | None = None,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Change of every lens measure from `baseline` to `other` (other - baseline) per
    (language, layer), paired over the facts both cover: one resample of facts applies to
    both. `p_value` = 2 min(P(d* <= 0), P(d* >= 0)), capped at 1. Columns:
    COMPARE_LENS_COLUMNS."""
    _check_ci(n_boot, ci)
    keys = ["fact_id", "language", "layer"]
    joined = baseline.items[keys + list(LENS_METRICS)].merge(
        other.items[keys + list(LENS_METRICS)], on=keys, suffixes=("_a", "_b")
    )
    if joined.empty:
        raise DataError(
            "the two lens results share no (fact, language, layer). Fix: run both on the same "
            "facts, languages and layers"
        )
    rows = []
    resamples: dict[tuple[int, str], np.ndarray] = {}
    for (code, layer), part in joined.groupby(["language", "layer"], sort=False):
        fact_ids = part["fact_id"].astype(str).to_numpy()
        selections = [(ALL, np.arange(len(fact_ids)))]
        groups = item_groups(by, fact_ids, code, by_column)
        if groups is not None:
            for group in sorted({g for g in groups if g is not None}, key=str):
                selections.append((group, np.flatnonzero(groups == group)))
        for group, members in selections:
            key = (len(members), str(group))
            if key not in resamples:
                resamples[key] = bootstrap_weights(len(members), n_boot, seed, str(group))
            weights = resamples[key]
            for metric in LENS_METRICS:
                a = part[f"{metric}_a"].to_numpy(dtype=float)[members]
                b = part[f"{metric}_b"].to_numpy(dtype=float)[members]
                diff = b - a
                reps = weights @ diff / len(members)
                lo, hi = _interval(reps, ci) if n_boot else (float("nan"), float("nan"))
                p = (
                    min(1.0, 2 * min((reps <= 0).mean(), (reps >= 0).mean()))
                    if n_boot
                    else float("nan")
                )
                rows.append(
                    (
                        code,
                        int(layer),
                        metric,
                        str(group),
                        float(a.mean()),
                        float(b.mean()),
                        float(diff.mean()),
                        lo,
                        hi,
                        p,
                        len(members),
                    )
                )
    return pd.DataFrame(rows, columns=COMPARE_LENS_COLUMNS)
