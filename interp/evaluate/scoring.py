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

Batching: all options of `batch_size` items go into one batch, padded on the RIGHT by this
module (the tokenizer's `padding_side` is never used). With right padding, the real tokens keep
positions 0..n-1 and a causal model never attends to the padding that follows them, so a
padded sequence is scored exactly as it would be alone.
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
    prompt_ids = _ids(tokenizer, prompt, special=True)
    if not prompt_ids:
        raise DataError(f"prompt {prompt!r} tokenises to nothing. Fix: check the prompt template")
    encoded = []
    for option in options:
        continuation = " " + str(option)
        whole = _ids(tokenizer, prompt + continuation, special=True)
        if len(whole) > len(prompt_ids) and whole[: len(prompt_ids)] == prompt_ids:
            encoded.append(EncodedOption(tuple(whole), len(prompt_ids)))
            continue
        tail = _ids(tokenizer, continuation, special=False)
        if not tail:
            raise DataError(
                f"option {option!r} (after prompt {prompt!r}) tokenises to no tokens. "
                "Fix: remove empty options from the item"
            )
        encoded.append(EncodedOption(tuple(prompt_ids + tail), len(prompt_ids), True))
    return encoded


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
    progress: bool = True,
) -> pd.DataFrame:
    """Score every option of every item by its log-likelihood after the question prompt.

    `items`: a DataFrame or an iterable of dicts / objects with fact_id, language, question,
    options, answer_index (and optionally option_ids, relation), e.g. `FactSet.to_frame()`.
    `normalize`: "token" = mean log-probability of the option's tokens (the paper's protocol),
    "sum" = total log-probability, "char" = total divided by the option's length in characters.
    `batch_size` counts items; each batch holds all their options. `device`: where inputs go
    (default: the model's device; the model itself is not moved).
    Returns one row per item: fact_id, language, [relation], answer_index, option_ids, scores
    (tuple, option order), n_option_tokens (tuple).
    """
    import torch
    from tqdm.auto import tqdm

    if normalize not in NORMALIZATIONS:
        raise DataError(
            f"normalize={normalize!r} is not known. Fix: use one of {', '.join(NORMALIZATIONS)}"
        )
    if batch_size < 1:
        raise DataError(f"batch_size={batch_size}: must be at least 1")
    records = _records(items)
    device = _model_device(model) if device is None else torch.device(device)
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0

    encoded = [
        encode_options(tokenizer, prompt_template.format(question=r["question"]), r["options"])
        for r in records
    ]
    merged = sum(e.merged_boundary for options in encoded for e in options)
    if merged:
        warnings.warn(
            f"{merged} option(s) share a token with the prompt under joint tokenisation; they were "
            "scored as separately tokenised prompt + option",
            stacklevel=2,
        )

    all_scores: list[tuple[float, ...]] = []
    all_counts: list[tuple[int, ...]] = []
    was_training = model.training
    model.eval()
    try:
        starts = range(0, len(records), batch_size)
        for start in tqdm(starts, desc="scoring options", disable=not progress, unit="batch"):
            batch = encoded[start : start + batch_size]
            sequences = [option for options in batch for option in options]
            log_likelihoods = _option_log_likelihoods(model, sequences, pad_id, device)
            position = 0
            for record, options in zip(records[start : start + batch_size], batch, strict=True):
                totals = log_likelihoods[position : position + len(options)]
                position += len(options)
                counts = np.array([o.n_option_tokens for o in options], dtype=float)
                if normalize == "token":
                    values = totals / counts
                elif normalize == "char":
                    values = totals / np.array([len(o) for o in record["options"]], dtype=float)
                else:
                    values = totals
                all_scores.append(tuple(float(v) for v in values))
                all_counts.append(tuple(int(c) for c in counts))
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
        }
    )
    if any("relation" in r for r in records):
        table.insert(2, "relation", [r.get("relation") for r in records])
    return table


def _option_log_likelihoods(model, sequences: list[EncodedOption], pad_id: int, device):
    """Summed log-probability of each sequence's option tokens, in one right-padded forward."""
    import torch

    lengths = [len(s.input_ids) for s in sequences]
    width = max(lengths)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    rows, positions = [], []
    for row, sequence in enumerate(sequences):
        input_ids[row, : lengths[row]] = torch.tensor(sequence.input_ids)
        attention_mask[row, : lengths[row]] = 1
        # option token at position t is predicted by the logits at position t - 1
        for t in range(sequence.option_start, lengths[row]):
            rows.append(row)
            positions.append(t)
    rows_t = torch.tensor(rows)
    positions_t = torch.tensor(positions)
    with torch.inference_mode():
        logits = model(
            input_ids=input_ids.to(device),
            attention_mask=attention_mask.to(device),
            use_cache=False,
        ).logits
        picked = logits[rows_t.to(logits.device), (positions_t - 1).to(logits.device)].float()
        log_probs = torch.log_softmax(picked, dim=-1)
        targets = input_ids[rows_t, positions_t].to(log_probs.device)
        token_log_probs = log_probs.gather(1, targets[:, None])[:, 0].double().cpu()
    totals = torch.zeros(len(sequences), dtype=torch.float64)
    totals.index_add_(0, rows_t, token_log_probs)
    return totals.numpy()
