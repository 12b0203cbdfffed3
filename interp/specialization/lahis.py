"""LAHIS: language-specific attention-head importance (arXiv 2511.07498), as PolyFact ran it.

    from interp.specialization.lahis import lahis
    result = lahis(model, tokenizer, {"en": en_texts, "de": de_texts}, samples_per_language=500)
    result.importance            # torch [languages, layers, heads]
    result.table()               # language, layer, head, importance, mean_score, neg_freq
    result.top_heads(0.02)       # HeadSelection: .sets(), .overlap(), .general()
    result.sample_scores["en"]   # torch [samples, layers, heads]: |g| m 1000 of each sample
    result.sample_negative["en"] # torch bool [samples, layers, heads]: g m < 0 of each sample

The algorithm, per language (a fresh mask and a fresh optimizer for every language, as the
released code runs one language per call):
- a soft mask m[layer, head] = 1 multiplies each head's output before `o_proj`; every model
  weight is frozen (requires_grad False), so the backward pass computes no weight gradient;
- for each sample (one sequence, cut to `max_length` tokens): L = mean next-token
  cross-entropy; g = dL/dm; accumulate |g| * m * 1000 and the count of g * m < 0 (m before
  the step); then one AdamW step on m (torch defaults as released: betas (0.9, 0.999), eps
  1e-8, weight_decay 0.01; lr 1e-2);
- importance = mean(|g| m 1000) * frequency(g m < 0), both over the samples used.
The mask is float32 (float64 for a float64 model); the release kept it in the model's bf16.

The per-sample values are kept too (`sample_scores`, `sample_negative`, in the order the
samples were used), so that importance is their mean times their frequency and samples can be
resampled (`interp.specialization.head_stability`). They are the values of this run: sample i
saw the mask that the AdamW steps of samples 0..i-1 left, so resampling them is a bootstrap of
the aggregation over samples given that run. It measures the sampling variability of the mean
and the frequency, not that of the optimisation path (other samples, or another order, would
move the mask differently).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from interp.errors import ConfigError, DataError
from interp.models import adapters
from interp.specialization.ablation import encode_sequences, scale_heads

if TYPE_CHECKING:
    import torch

    from interp.specialization.heads import HeadSelection

__all__ = ["LahisResult", "frozen", "lahis", "lahis_language", "mask_loss"]

SCORE_SCALE = 1000.0  # the release multiplies |g| m by 1000


@contextlib.contextmanager
def frozen(model: Any) -> Iterator[Any]:
    """Eval mode with every parameter's requires_grad False; both restored on exit."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    was_training = model.training
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        model.eval()
        yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)


def _mask_dtype(model: Any) -> torch.dtype:
    import torch

    dtype = next(adapters.unwrap(model).parameters()).dtype
    return torch.float64 if dtype == torch.float64 else torch.float32


def mask_loss(model: Any, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy of one sequence `input_ids` [1, seq] with heads scaled by
    `mask` [layers, heads] (differentiable with respect to `mask`)."""
    import torch

    with scale_heads(model, mask):
        logits = model(input_ids=input_ids, use_cache=False).logits
    # at least float32 (bf16 logits lose the loss), float64 kept for gradient checks
    logits = logits[0, :-1].to(torch.promote_types(logits.dtype, torch.float32))
    return torch.nn.functional.cross_entropy(logits, input_ids[0, 1:])


@dataclass
class _LanguageScores:
    score_sum: torch.Tensor  # sum over samples of |g| m 1000, [layers, heads], float64
    negative: torch.Tensor  # count of g m < 0, [layers, heads], int64
    samples: int
    # per sample, in the order used: |g| m 1000 [samples, layers, heads] in the mask's dtype
    # (the exact values summed into score_sum) and g m < 0 [samples, layers, heads] bool
    sample_scores: torch.Tensor | None = None
    sample_negative: torch.Tensor | None = None


def lahis_language(
    model: Any,
    sequences: Sequence[Sequence[int]],
    *,
    lr: float = 1e-2,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    progress: bool = False,
    desc: str = "LAHIS",
) -> _LanguageScores:
    """LAHIS sums of one language's token-id sequences, from a fresh mask m = 1, and the
    per-sample values they sum.

    Sequences shorter than 2 tokens (no prediction) are skipped and not counted.
    """
    import torch
    from tqdm.auto import tqdm

    size = adapters.shape(model)
    device = adapters.o_proj(model, 0).weight.device
    input_device = model.get_input_embeddings().weight.device
    mask = torch.nn.Parameter(
        torch.ones(size.num_layers, size.num_heads, dtype=_mask_dtype(model), device=device)
    )
    optimizer = torch.optim.AdamW([mask], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    score_sum = torch.zeros_like(mask, dtype=torch.float64)
    negative = torch.zeros_like(mask, dtype=torch.int64)
    sample_scores: list[torch.Tensor] = []
    sample_negative: list[torch.Tensor] = []
    used = 0
    with frozen(model), torch.enable_grad():
        for seq in tqdm(sequences, desc=desc, disable=not progress, leave=False):
            if len(seq) < 2:
                continue
            ids = torch.as_tensor(seq, dtype=torch.long, device=input_device)[None]
            loss = mask_loss(model, ids, mask)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            with torch.no_grad():
                signed = mask.grad * mask  # accumulated with m before the step
                score = mask.grad.abs() * mask * SCORE_SCALE
                below = signed < 0
                score_sum += score.double()
                negative += below.long()
                sample_scores.append(score)
                sample_negative.append(below)
            optimizer.step()
            used += 1
    empty = (0, size.num_layers, size.num_heads)
    return _LanguageScores(
        score_sum.cpu(),
        negative.cpu(),
        used,
        sample_scores=(
            torch.stack(sample_scores).cpu() if used else torch.zeros(empty, dtype=mask.dtype)
        ),
        sample_negative=(
            torch.stack(sample_negative).cpu() if used else torch.zeros(empty, dtype=torch.bool)
        ),
    )


@dataclass
class LahisResult:
    """LAHIS importance per language: `importance` = `mean_score` * `neg_freq`, each a float
    tensor [languages, layers, heads]; `samples` = samples used per language.

    `sample_scores` / `sample_negative`: {language: [samples, layers, heads]} per-sample
    |g| m 1000 (the mask's dtype) and g m < 0 (bool), in the order used; their means over the
    samples are `mean_score` and `neg_freq` (empty for a result built without them; `save`
    writes only the importance, the release's layout).
    """

    importance: torch.Tensor
    mean_score: torch.Tensor
    neg_freq: torch.Tensor
    languages: tuple[str, ...]
    samples: dict[str, int]
    params: dict[str, Any] = field(default_factory=dict)
    sample_scores: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    sample_negative: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    def table(self) -> pd.DataFrame:
        """Tidy language, layer, head, importance, mean_score, neg_freq, samples."""
        n_lang, n_layers, n_heads = self.importance.shape
        per = n_layers * n_heads
        return pd.DataFrame(
            {
                "language": np.repeat(np.asarray(self.languages, dtype=object), per),
                "layer": np.tile(np.repeat(np.arange(n_layers), n_heads), n_lang),
                "head": np.tile(np.arange(n_heads), n_lang * n_layers),
                "importance": self.importance.double().numpy().ravel(),
                "mean_score": self.mean_score.double().numpy().ravel(),
                "neg_freq": self.neg_freq.double().numpy().ravel(),
                "samples": np.repeat([self.samples[lang] for lang in self.languages], per),
            }
        )

    def top_heads(self, frac: float = 0.02, *, k: int | None = None) -> HeadSelection:
        """The top heads per language (see `interp.specialization.heads.top_heads`)."""
        from interp.specialization.heads import top_heads

        return top_heads(self.importance, self.languages, frac=frac, k=k, source="LAHIS")

    def save(self, folder: str | Path) -> Path:
        """`lahis_<lang>.pth` ([layers, heads] float32) per language and `meta.json`, the
        release's layout: a folder `<root>/lahis/<name>` reads back with
        `interp.specialization.reference.load_lahis(name, root, languages=...)`."""
        import torch

        from interp.io import atomic_write_bytes, atomic_write_json

        folder = Path(folder)
        for i, lang in enumerate(self.languages):
            buffer = io.BytesIO()
            torch.save(self.importance[i].float().clone(), buffer)
            atomic_write_bytes(folder / f"lahis_{lang}.pth", buffer.getvalue())
        n_lang, n_layers, n_heads = self.importance.shape
        meta = {
            **self.params,
            "langs": list(self.languages),
            "samples": self.samples,
            "num_layers": n_layers,
            "num_heads": n_heads,
        }
        atomic_write_json(folder / "meta.json", meta)
        return folder


def lahis(
    model: Any,
    tokenizer: Any,
    sequences_by_language: Mapping[str, Any],
    *,
    lr: float = 1e-2,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    samples_per_language: int | None = None,
    max_length: int = 512,
    seed: int | None = None,
    progress: bool = True,
) -> LahisResult:
    """LAHIS head importance `[languages, layers, heads]` for each language's samples.

    sequences_by_language: {language: list of texts (needs `tokenizer`) or token-id lists,
    or a padded batch}. samples_per_language: the first n samples (after a shuffle when `seed`
    is given; the paper used 500-1000); max_length: tokens per sample (paper: 512).
    The model's weights, requires_grad flags and train/eval mode are left as they were.
    """
    from tqdm.auto import tqdm

    if not isinstance(sequences_by_language, Mapping) or not sequences_by_language:
        raise DataError("sequences_by_language must be a non-empty {language: samples} mapping")
    if samples_per_language is not None and samples_per_language < 1:
        raise ConfigError(f"samples_per_language must be >= 1, got {samples_per_language}")
    if lr < 0:
        raise ConfigError(f"lr must be >= 0, got {lr}")
    adapters.adapter_for(model)  # unsupported family -> ModelError before any work
    size = adapters.shape(model)
    rng = np.random.default_rng(seed)
    sums = {}
    languages = tuple(sequences_by_language)
    bar = tqdm(languages, desc="LAHIS", disable=not progress)
    for lang in bar:
        seqs = encode_sequences(
            tokenizer,
            sequences_by_language[lang],
            max_length=max_length,
            source=f"language {lang!r}",
        )
        if seed is not None:
            seqs = [seqs[i] for i in rng.permutation(len(seqs))]
        if samples_per_language is not None:
            seqs = seqs[:samples_per_language]
        scores = lahis_language(
            model,
            seqs,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            progress=progress,
            desc=f"LAHIS [{lang}]",
        )
        if scores.samples == 0:
            raise DataError(
                f"language {lang!r}: no sample with at least 2 tokens. Fix: pass longer texts"
            )
        sums[lang] = scores
    mean_score, neg_freq = _finish(sums, languages)
    params = {
        "model": getattr(adapters.unwrap(model).config, "_name_or_path", ""),
        "family": adapters.unwrap(model).config.model_type,
        "lr": lr,
        "betas": list(betas),
        "eps": eps,
        "weight_decay": weight_decay,
        "samples_per_language": samples_per_language,
        "max_length": max_length,
        "seed": seed,
        "fresh_mask_per_language": True,
        "num_layers": size.num_layers,
        "num_heads": size.num_heads,
    }
    return LahisResult(
        importance=(mean_score * neg_freq).float(),
        mean_score=mean_score.float(),
        neg_freq=neg_freq.float(),
        languages=languages,
        samples={lang: sums[lang].samples for lang in languages},
        params=params,
        sample_scores={lang: sums[lang].sample_scores for lang in languages},
        sample_negative={lang: sums[lang].sample_negative for lang in languages},
    )


def _finish(
    sums: Mapping[str, _LanguageScores], languages: Sequence[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    mean = torch.stack([sums[lang].score_sum / sums[lang].samples for lang in languages])
    freq = torch.stack([sums[lang].negative.double() / sums[lang].samples for lang in languages])
    return mean, freq
