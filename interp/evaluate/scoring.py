"""Option log-likelihood scoring: the paper's evaluation protocol for any HF causal LM.

Each option is scored by its log-likelihood as a continuation of "Question: {q}\\nAnswer:"
(the options are not shown in the prompt), normalised per token by default, and the argmax is
the model's answer. The output is the scores table that `interp.evaluate.metrics` consumes.

Tokenisation of the prompt/option boundary: the prompt alone and the whole text
prompt + " " + option are tokenised, and the option's tokens are the tokens the whole text has
beyond the prompt's. This scores the option under the tokenisation the model sees when the
text occurs naturally (the canonical one; lm-evaluation-harness does the same), rather than
under a concatenation of separately tokenised pieces that the model may never have seen.
It requires the prompt's tokens to be a prefix of the whole text's tokens, which holds for
byte-level BPE tokenizers with GPT-2/Qwen2-style pre-tokenisation because the option starts
with a space. Where a tokenizer merges across the boundary, that option falls back to the
separately tokenised pieces (prompt tokens + tokens of " " + option) and a warning says how
often this happened.

Packing: an item's prompt is run once, with all its options after it in one row
(prompt, option 1, option 2, ...). Each option's tokens take the positions they would have
right after the prompt (explicit position ids) and a 4D attention mask lets them see the
prompt and the earlier tokens of their own option only, so every option is scored as if it
stood alone after the prompt, while the prompt's tokens are computed once instead of once per
option. The vocabulary projection is applied only where a next-token prediction is scored.
Rows are padded on the RIGHT by this module (the tokenizer's `padding_side` is never used);
padding is masked out, and items are batched in order of length so little of it is needed.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from interp.errors import DataError, ModelError

PROMPT_TEMPLATE = "Question: {question}\nAnswer:"
# asks nothing: an option's log-likelihood after it is the prior the calibration removes
NEUTRAL_PROMPT = "Answer:"
_NEUTRAL_PER_ROW = 8  # options packed after one copy of the neutral prompt
NORMALIZATIONS = ("token", "sum", "char")
_ITEM_FIELDS = ("fact_id", "language", "question", "options", "answer_index")


@dataclass(frozen=True)
class EncodedOption:
    """Token ids of prompt + option, and where the option's tokens start."""

    input_ids: tuple[int, ...]
    option_start: int
    merged_boundary: bool = False  # True when the fallback concatenation was used

    @property
    def n_option_tokens(self) -> int:
        return len(self.input_ids) - self.option_start


def _ids(tokenizer, text: str, *, special: bool) -> list[int]:
    return list(tokenizer(text, add_special_tokens=special)["input_ids"])


def encode_options(tokenizer, prompt: str, options: Sequence[str]) -> list[EncodedOption]:
    """Tokenise prompt + " " + option for every option (see the module docstring)."""
    return encode_many(tokenizer, [(prompt, options)])[0]


def encode_many(tokenizer, items: Sequence[tuple[str, Sequence[str]]]) -> list[list[EncodedOption]]:
    """`encode_options` for many (prompt, options) pairs, in two batched tokenizer calls
    (one per text call is a quarter of the scoring time for a small model)."""
    prompts = [prompt for prompt, _ in items]
    wholes = [prompt + " " + str(option) for prompt, options in items for option in options]
    prompt_ids = _batch_ids(tokenizer, prompts, special=True)
    whole_ids = iter(_batch_ids(tokenizer, wholes, special=True))
    out = []
    for (prompt, options), ids in zip(items, prompt_ids, strict=True):
        if not ids:
            raise DataError(
                f"prompt {prompt!r} tokenises to nothing. Fix: check the prompt template"
            )
        encoded = []
        for option in options:
            whole = next(whole_ids)
            if len(whole) > len(ids) and whole[: len(ids)] == ids:
                encoded.append(EncodedOption(tuple(whole), len(ids)))
                continue
            tail = _ids(tokenizer, " " + str(option), special=False)
            if not tail:
                raise DataError(
                    f"option {option!r} (after prompt {prompt!r}) tokenises to no tokens. "
                    "Fix: remove empty options from the item"
                )
            encoded.append(EncodedOption(tuple(ids + tail), len(ids), True))
        out.append(encoded)
    return out


def _batch_ids(tokenizer, texts: Sequence[str], *, special: bool) -> list[list[int]]:
    if not texts:
        return []
    return [list(ids) for ids in tokenizer(list(texts), add_special_tokens=special)["input_ids"]]


def _records(items: Any) -> list[dict]:
    """Items as dicts: a DataFrame, dicts, or objects with attributes (e.g. QuestionItem)."""
    if isinstance(items, pd.DataFrame):
        records = items.to_dict("records")
    else:
        records = []
        for item in items:
            if isinstance(item, dict):
                records.append(dict(item))
            else:
                fields = _ITEM_FIELDS + ("option_ids", "relation")
                records.append({f: getattr(item, f) for f in fields if hasattr(item, f)})
    if not records:
        raise DataError("items: nothing to score. Fix: pass at least one question item")
    for position, record in enumerate(records):
        missing = [f for f in _ITEM_FIELDS if f not in record]
        if missing:
            raise DataError(
                f"items[{position}]: missing field(s) {', '.join(missing)}. Fix: give every item "
                f"{', '.join(_ITEM_FIELDS)}"
            )
        options = list(record["options"])
        if isinstance(record["options"], dict):  # PolyFact's {"A": ..., "B": ...}
            options = [record["options"][k] for k in sorted(record["options"])]
        if not options or any(not str(o).strip() for o in options):
            raise DataError(
                f"items[{position}] (fact {record['fact_id']!r}, {record['language']!r}): empty "
                "option text. Fix: every option needs text"
            )
        record["options"] = tuple(str(o) for o in options)
    return records


def _option_ids(ids) -> tuple | None:
    """Entity ids as a tuple; None where an item has none (missing, None or NaN in a frame)."""
    return tuple(ids) if isinstance(ids, list | tuple | np.ndarray) else None


def _model_device(model):
    try:
        return next(model.parameters()).device
    except StopIteration:  # pragma: no cover - a model without parameters cannot be scored
        raise ModelError("model has no parameters. Fix: pass a loaded causal LM") from None


def score_options(
    model,
    tokenizer,
    items: pd.DataFrame | Iterable,
    *,
    batch_size: int = 8,
    device=None,
    normalize: str = "token",
    prompt_template: str = PROMPT_TEMPLATE,
    neutral_prompt: str | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Score every option of every item by its log-likelihood after the question prompt.

    `items`: a DataFrame or an iterable of dicts / objects with fact_id, language, question,
    options, answer_index (and optionally option_ids, relation), e.g. `FactSet.to_frame()`.
    `normalize`: "token" = mean log-probability of the option's tokens (the paper's protocol),
    "sum" = total log-probability, "char" = total divided by the option's length in characters.
    `batch_size` counts items; each batch holds all their options. `device`: where inputs go
    (default: the model's device; the model itself is not moved).
    `neutral_prompt` (e.g. NEUTRAL_PROMPT): also score every option after this prompt, which
    asks nothing, for the surface-form calibration of `calibrated_scores`.
    Returns one row per item: fact_id, language, [relation], answer_index, option_ids, scores
    (tuple, option order), n_option_tokens (tuple), log_likelihood (summed log-probabilities,
    tuple), and with a neutral prompt neutral_log_likelihood (tuple).
    """
    from tqdm.auto import tqdm

    if normalize not in NORMALIZATIONS:
        raise DataError(
            f"normalize={normalize!r} is not known. Fix: use one of {', '.join(NORMALIZATIONS)}"
        )
    if batch_size < 1:
        raise DataError(f"batch_size={batch_size}: must be at least 1")
    records = _records(items)
    if device is None:
        device = _model_device(model)
    else:
        from interp.models.loading import check_device

        device = check_device(device)
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0

    encoded = encode_many(
        tokenizer, [(prompt_template.format(question=r["question"]), r["options"]) for r in records]
    )
    merged = sum(e.merged_boundary for options in encoded for e in options)
    if merged:
        warnings.warn(
            f"{merged} option(s) share a token with the prompt under joint tokenisation; they were "
            "scored as separately tokenised prompt + option",
            stacklevel=2,
        )

    all_scores: list[tuple[float, ...]] = [()] * len(records)
    all_counts: list[tuple[int, ...]] = [()] * len(records)
    all_sums: list[tuple[float, ...]] = [()] * len(records)
    # similar lengths together: little padding; results go back to the input order
    order = sorted(range(len(records)), key=lambda i: sum(len(o.input_ids) for o in encoded[i]))
    was_training = model.training
    model.eval()
    try:
        starts = range(0, len(records), batch_size)
        for start in tqdm(starts, desc="scoring options", disable=not progress, unit="batch"):
            members = order[start : start + batch_size]
            batch = [encoded[i] for i in members]
            log_likelihoods = _option_log_likelihoods(model, batch, pad_id, device)
            position = 0
            for index, options in zip(members, batch, strict=True):
                totals = log_likelihoods[position : position + len(options)]
                position += len(options)
                counts = np.array([o.n_option_tokens for o in options], dtype=float)
                if normalize == "token":
                    values = totals / counts
                elif normalize == "char":
                    lengths = [len(o) for o in records[index]["options"]]
                    values = totals / np.array(lengths, dtype=float)
                else:
                    values = totals
                all_scores[index] = tuple(float(v) for v in values)
                all_counts[index] = tuple(int(c) for c in counts)
                all_sums[index] = tuple(float(v) for v in totals)
        neutral = None
        if neutral_prompt is not None:
            options = sorted({o for r in records for o in r["options"]})
            priors = _neutral_log_likelihoods(
                model, tokenizer, neutral_prompt, options, pad_id, device, batch_size
            )
            neutral = [tuple(priors[o] for o in r["options"]) for r in records]
    finally:
        model.train(was_training)

    table = pd.DataFrame(
        {
            "fact_id": [r["fact_id"] for r in records],
            "language": [r["language"] for r in records],
            "answer_index": [int(r["answer_index"]) for r in records],
            "option_ids": [_option_ids(r.get("option_ids")) for r in records],
            "scores": all_scores,
            "n_option_tokens": all_counts,
            "log_likelihood": all_sums,
        }
    )
    if neutral is not None:
        table["neutral_log_likelihood"] = neutral
    if any("relation" in r for r in records):
        table.insert(2, "relation", [r.get("relation") for r in records])
    return table


def _packed_rows(batch: list[list[EncodedOption]]):
    """One row per item: prompt, then every option; positions, targets and where to score.

    Returns (rows, positions, owners, scored): rows[i] / positions[i] are the token ids and
    position ids of row i; owners[i][t] is the option (index within the batch's flattened
    options) token t belongs to, -1 for the prompt; scored lists (row, column, target column,
    option): the logits at `column` predict the token at `target column` (for an option's
    first token, `column` is the prompt's last position).
    """
    rows, positions, scored, owners = [], [], [], []
    flat = 0
    for options in batch:
        prompt = list(options[0].input_ids[: options[0].option_start])
        ids, pos, owner = list(prompt), list(range(len(prompt))), [-1] * len(prompt)
        row = len(rows)
        for option in options:
            tail = list(option.input_ids[option.option_start :])
            start = len(ids)
            ids += tail
            pos += range(len(prompt), len(prompt) + len(tail))
            owner += [flat] * len(tail)
            # first token predicted from the prompt's last position, the rest from their own
            scored.append((row, len(prompt) - 1, start, flat))
            scored += [(row, start + k - 1, start + k, flat) for k in range(1, len(tail))]
            flat += 1
        rows.append(ids)
        positions.append(pos)
        owners.append(owner)
    return rows, positions, owners, scored


def _packed_mask(owners: list[list[int]], width: int, dtype):
    """Additive [rows, 1, width, width] mask: causal, and an option sees the prompt and itself."""
    import torch

    owner = torch.full((len(owners), width), -2, dtype=torch.long)  # -2: padding
    for i, row in enumerate(owners):
        owner[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    query, key = owner[:, :, None], owner[:, None, :]
    causal = torch.ones(width, width, dtype=torch.bool).tril()[None]
    allowed = causal & ((key == -1) | (key == query)) & (key != -2)
    # padding rows see only themselves (their outputs are never read; no row is all-masked)
    allowed |= torch.eye(width, dtype=torch.bool)[None] & (query == -2)
    mask = torch.zeros(allowed.shape, dtype=dtype)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[:, None]


def _head_and_body(model):
    """(decoder body, vocabulary projection) when logits are a plain projection of the body's
    output; None for models that rescale or cap their logits (then full logits are used)."""
    config = getattr(model, "config", None)
    if any(getattr(config, name, None) for name in ("final_logit_softcapping", "logit_scale")):
        return None
    try:
        body, head = model.get_decoder(), model.get_output_embeddings()
    except (AttributeError, NotImplementedError):
        return None
    if body is None or head is None or body is model:
        return None
    return body, head


def _option_log_likelihoods(model, batch: list[list[EncodedOption]], pad_id: int, device):
    """Summed log-probability of every option's tokens, the options of each item packed after
    its prompt in one row (see the module docstring)."""
    import torch

    rows, positions, owners, scored = _packed_rows(batch)
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    position_ids = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (ids, pos) in enumerate(zip(rows, positions, strict=True)):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        position_ids[i, : len(pos)] = torch.tensor(pos)
    row_t, col_t, target_col_t, option_t = (torch.tensor(c) for c in zip(*scored, strict=True))
    dtype = next(model.parameters()).dtype
    mask = _packed_mask(owners, width, dtype if dtype.is_floating_point else torch.float32)
    inputs = {
        "input_ids": input_ids.to(device),
        "attention_mask": mask.to(device),
        "position_ids": position_ids.to(device),
        "use_cache": False,
    }
    split = _head_and_body(model)
    with torch.inference_mode():
        if split is not None:
            body, head = split
            hidden = body(**inputs).last_hidden_state
            picked = head(hidden[row_t.to(hidden.device), col_t.to(hidden.device)]).float()
        else:
            logits = model(**inputs).logits
            picked = logits[row_t.to(logits.device), col_t.to(logits.device)].float()
        log_probs = torch.log_softmax(picked, dim=-1)
        targets = input_ids[row_t, target_col_t].to(log_probs.device)
        token_log_probs = log_probs.gather(1, targets[:, None])[:, 0].double().cpu()
    n_options = sum(len(options) for options in batch)
    totals = torch.zeros(n_options, dtype=torch.float64)
    totals.index_add_(0, option_t, token_log_probs)
    return totals.numpy()


def _neutral_log_likelihoods(
    model, tokenizer, prompt: str, options: list[str], pad_id: int, device, batch_size: int
) -> dict[str, float]:
    """Summed log-probability of each distinct option after `prompt`, several per row."""
    groups = encode_many(
        tokenizer,
        [
            (prompt, options[i : i + _NEUTRAL_PER_ROW])
            for i in range(0, len(options), _NEUTRAL_PER_ROW)
        ],
    )
    values = []
    for start in range(0, len(groups), batch_size):
        values.extend(
            _option_log_likelihoods(model, groups[start : start + batch_size], pad_id, device)
        )
    return dict(zip(options, (float(v) for v in values), strict=True))


def calibrated_scores(table: pd.DataFrame) -> pd.DataFrame:
    """The scores table with `scores` = log p(option | question) - log p(option | neutral prompt)
    (summed over the option's tokens): the option's pointwise mutual information with the
    question, which removes how likely the option's text is whatever is asked (Holtzman et al.
    2021, "Surface Form Competition")."""
    for column in ("log_likelihood", "neutral_log_likelihood"):
        if column not in table.columns:
            raise DataError(
                f"scores table: no {column!r} column for calibration. Fix: score with "
                "score_options(..., neutral_prompt=NEUTRAL_PROMPT)"
            )
    out = table.copy()
    out["scores"] = [
        tuple(float(a) - float(b) for a, b in zip(q, n, strict=True))
        for q, n in zip(out["log_likelihood"], out["neutral_log_likelihood"], strict=True)
    ]
    return out
