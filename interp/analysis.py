"""Score one checkpoint's language specialization and keep the result as an artifact folder.

    from interp.analysis import AnalysisConfig, analyze
    result = analyze("checkpoints/default/base", corpus, heldout=heldout_corpus)
    result.neurons["lape-paper"].per_language()   # specific neurons per language
    result.bootstrap["absolute"].per_language     # ... with 95% intervals over sequences
    result.heads.overlap()                        # top-head overlap between languages

One pass of the model over a per-language corpus feeds the streaming accumulators (firing
counts, per-sequence counts for resampling, mean activations, head-output norms); the scorers
(LAPE paper / Tang, absolute), bootstrap intervals and permutation nulls run on those counts;
LAHIS ranks heads; ablations give the dark-diagonal matrices on held-out text.

The folder (`<checkpoint>/analysis/<key>/` by default) holds the raw accumulators
(safetensors), tidy tables (parquet) and `provenance.json` (model and corpus fingerprints,
config, versions). `key` is a hash of all three, so a second call with the same model, corpus
and settings reloads the folder instead of recomputing; the folder lands in one rename.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interp.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from interp.specialization.heads import HeadSelection
    from interp.specialization.lape import NeuronCounts, NeuronSelection
    from interp.specialization.stats import BootstrapResult, SpecializationIndex

SCORERS = ("lape-paper", "lape-tang", "absolute", "null-fdr")
# the activation-based sets the causal ones are compared with ("unit kind:selection")
CAUSAL_OVERLAPS = ("neurons:lape-paper", "neurons:null-fdr", "heads:lahis")


@dataclass(frozen=True)
class AnalysisConfig:
    """What to measure and how much. Defaults suit the organism; the pipeline's paper preset
    (`interp.config.PRESET_VALUES`) has the 7B scale."""

    backend: str = "torch"
    seq_len: int = 128
    token_budget: int | None = 32768  # tokens per language
    batch_size: int = 8
    scorers: tuple[str, ...] = SCORERS
    top_frac: float = 0.01  # LAPE budget
    n_boot: int = 200  # bootstrap resamples over sequences (0 = none)
    n_perm: int = 200  # permutations of language labels (0 = none)
    chunk_size: int = 1  # sequences per resampling unit
    lahis_samples: int = 32  # per language (0 = no LAHIS); the paper used 500-1000
    lahis_max_length: int = 128
    head_frac: float = 0.02  # top heads per language (the paper's 2%) ...
    min_top_heads: int = 4  # ... but at least this many, so small models' overlaps can vary
    # the absolute rule's thresholds from label shuffles of this model's own counts (with the
    # 2-fold specificity of null-fdr) instead of its fixed constants, which may suit no model
    # (the pipeline's presets turn it on; its thresholds are in provenance["scorer_params"])
    calibrate_absolute: bool = False
    ablation: bool = True  # dark-diagonal matrices on held-out text
    # causal sets on the same held-out text: per language the neurons (as many as LAPE
    # chose) and heads whose zeroing hurts it more than the other languages
    causal: bool = False
    ablation_tokens: int = 2048  # held-out tokens per language (each of L x L cells reads them)
    ablation_random_repeats: int = 1
    seed: int = 0
    device: str | None = None

    def __post_init__(self):
        from interp.activations.backends import backend_name

        backend_name(self.backend)  # an unknown name is an error naming the known ones
        unknown = [s for s in self.scorers if s not in SCORERS]
        if unknown:
            raise ConfigError(f"unknown scorer(s) {unknown}. Fix: choose from {list(SCORERS)}")
        at_least = {
            "seq_len": 2,
            "batch_size": 1,
            "n_boot": 0,
            "n_perm": 0,
            "chunk_size": 1,
            "lahis_samples": 0,
            "lahis_max_length": 2,
            "min_top_heads": 1,
            "ablation_tokens": 1,
            "ablation_random_repeats": 0,
        }
        problems = [
            f"{name}={getattr(self, name)} must be >= {low}"
            for name, low in at_least.items()
            if getattr(self, name) < low
        ]
        if self.token_budget is not None and self.token_budget < 1:
            problems.append(f"token_budget={self.token_budget} must be >= 1 (or null: all text)")
        for name in ("top_frac", "head_frac"):
            if not 0 < getattr(self, name) <= 1:
                problems.append(f"{name}={getattr(self, name)} must be in (0, 1]")
        if problems:
            raise ConfigError(
                "AnalysisConfig: " + "; ".join(problems) + ". Fix: set these in [analysis]"
            )

    def identity(self) -> dict[str, Any]:
        """The settings that change results (not where or how fast they are computed)."""
        values = asdict(self)
        values.pop("device")
        from interp.activations.backends import backend_name

        values["backend"] = backend_name(self.backend)
        values.pop("batch_size")
        return values


@dataclass
class Analysis:
    """Everything measured on one checkpoint; tables are pandas, tensors torch."""

    folder: Path
    provenance: dict[str, Any]
    counts: NeuronCounts
    neurons: dict[str, NeuronSelection] = field(default_factory=dict)  # scorer -> selection
    bootstrap: dict[str, BootstrapResult] = field(default_factory=dict)  # scorer -> intervals
    permutation: dict[str, pd.DataFrame] = field(default_factory=dict)  # scorer -> null table
    head_importance: torch.Tensor | None = None  # [languages, layers, heads] LAHIS
    heads: HeadSelection | None = None
    # per (language, layer, head): selected, and the share of sample resamples selecting it
    head_frequency: pd.DataFrame | None = None
    # per language pair: the top-head overlap with its interval over resampled samples
    head_overlap: pd.DataFrame | None = None
    head_norms: pd.DataFrame | None = None  # tidy table
    ablation: dict[str, pd.DataFrame] = field(default_factory=dict)  # "neurons" / "heads"
    index: SpecializationIndex | None = None  # 1 - mean normalised entropy, with interval
    # "neurons" / "heads" -> per (language, layer, unit): attribution, exact and relative
    # effect of zeroing it, selected (causal.py); and per language their Jaccard overlap with
    # the activation-based sets ("neurons:lape-paper", "neurons:null-fdr", "heads:lahis")
    causal: dict[str, pd.DataFrame] = field(default_factory=dict)
    causal_overlap: dict[str, pd.DataFrame] = field(default_factory=dict)
    # scorer -> class, count, lo, hi: its neurons as language-, script-level, ... (scripts.py)
    script_classes: dict[str, pd.DataFrame] = field(default_factory=dict)
    from_cache: bool = False

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.provenance["languages"])

    def summary(self):
        """One row per language: specific neurons per scorer (with intervals), top heads."""
        import pandas as pd

        table = pd.DataFrame({"language": list(self.languages)})
        for name, selection in self.neurons.items():
            counts = selection.per_language().set_index("language")["count"]
            table[name] = table.language.map(counts).fillna(0).astype(int)
            boot = self.bootstrap.get(name)
            if boot is not None:
                ci = boot.per_language.set_index("language")
                table[f"{name} 95% CI"] = table.language.map(
                    lambda c, ci=ci: (
                        f"[{ci.loc[c, 'lo']:.0f}, {ci.loc[c, 'hi']:.0f}]" if c in ci.index else ""
                    )
                )
        return table


def _save_bootstrap(folder: Path, name: str, boot: Any) -> None:
    """All of a BootstrapResult, replicates included, so a reload gives the same figures."""
    import numpy as np

    from interp.io import atomic_write_json

    boot.per_language.to_parquet(folder / f"bootstrap_{name}.parquet")
    boot.per_layer.to_parquet(folder / f"bootstrap_{name}_layers.parquet")
    boot.stability.to_parquet(folder / f"bootstrap_{name}_stability.parquet")
    np.save(folder / f"bootstrap_{name}_samples.npy", boot.samples, allow_pickle=False)
    atomic_write_json(folder / f"bootstrap_{name}.json", {"ci": boot.ci, "seed": boot.seed})


def _load_bootstrap(folder: Path, name: str, observed: Any) -> Any:
    """The BootstrapResult `_save_bootstrap` wrote (None when the analysis had none)."""
    import numpy as np
    import pandas as pd

    from interp.errors import DataError
    from interp.specialization.stats import BootstrapResult

    files = {
        part: folder / f"bootstrap_{name}{suffix}"
        for part, suffix in (
            ("per_language", ".parquet"),
            ("per_layer", "_layers.parquet"),
            ("stability", "_stability.parquet"),
            ("samples", "_samples.npy"),
            ("meta", ".json"),
        )
    }
    if not files["per_language"].is_file():
        return None
    missing = [p.name for p in files.values() if not p.is_file()]
    if missing:
        raise DataError(
            f"{folder}: bootstrap files {missing} are missing (an older or damaged analysis). "
            "Fix: delete this folder and rerun `interp score` (or the pipeline)"
        )
    meta = json.loads(files["meta"].read_text(encoding="utf-8"))
    return BootstrapResult(
        observed=observed,
        per_language=pd.read_parquet(files["per_language"]),
        per_layer=pd.read_parquet(files["per_layer"]),
        stability=pd.read_parquet(files["stability"]),
        samples=np.load(files["samples"], allow_pickle=False),
        ci=meta["ci"],
        seed=meta["seed"],
    )


def _corpus_fingerprint(sequences: dict[str, list[list[int]]]) -> str:
    from interp.io import fingerprint

    return fingerprint("corpus", {code: seqs for code, seqs in sorted(sequences.items())})


def analysis_key(checkpoint, sequences, heldout_sequences, config: AnalysisConfig) -> str:
    from interp.io import checkpoint_fingerprint, fingerprint

    return fingerprint(
        "analysis-v4",
        checkpoint_fingerprint(checkpoint),
        _corpus_fingerprint(sequences),
        _corpus_fingerprint(heldout_sequences or {}),
        config.identity(),
    )


def analyze(
    checkpoint: str | os.PathLike,
    corpus,
    *,
    heldout=None,
    config: AnalysisConfig | None = None,
    out_dir: str | os.PathLike | None = None,
    languages=None,
    progress: bool = True,
) -> Analysis:
    """Measure (or reload) the specialization analysis of `checkpoint` on `corpus`.

    corpus / heldout: `interp.corpora.Corpus` (language -> texts); heldout feeds the ablations.
    """
    from interp.corpora import tokenize
    from interp.models.loading import check_checkpoint, check_device, load_tokenizer

    config = config or AnalysisConfig()
    check_device(config.device, allow_auto=True)  # also when the result is cached
    checkpoint = Path(check_checkpoint(checkpoint))
    if languages:
        corpus = corpus.subset(languages)
        heldout = heldout.subset(languages) if heldout is not None else None
    tokenizer = load_tokenizer(checkpoint)
    tokenized = tokenize(
        corpus, tokenizer, seq_len=config.seq_len, token_budget=config.token_budget
    )
    held = None
    if heldout is not None and config.ablation:
        held = tokenize(
            heldout, tokenizer, seq_len=config.seq_len, token_budget=config.ablation_tokens
        )
    key = analysis_key(checkpoint, tokenized.sequences, held.sequences if held else None, config)
    folder = Path(out_dir) if out_dir else checkpoint / "analysis" / key
    provenance_file = folder / "provenance.json"
    if provenance_file.is_file() and json.loads(provenance_file.read_text()).get("key") == key:
        return load_analysis(folder)
    return _compute(checkpoint, tokenizer, tokenized, held, config, key, folder, progress)


def _compute(checkpoint, tokenizer, tokenized, held, config, key, folder, progress) -> Analysis:
    """One pass over the corpus, then every measure on its counts; saved in one rename."""
    import torch

    from interp.models.loading import load_model

    torch.manual_seed(config.seed)
    model, _ = load_model(checkpoint, device=config.device)
    model.eval()
    accumulators, counts, seqs = _collect(model, tokenizer, tokenized, config, checkpoint, progress)
    result = Analysis(folder=folder, provenance={}, counts=counts)
    scorer_params = _score_neurons(result, seqs, config)
    result.head_norms = accumulators["head_norms"].to_frame()
    if config.lahis_samples:
        _score_heads(result, model, tokenizer, tokenized, config, progress)
    if held is not None:
        _ablate(result, model, tokenizer, held, config, progress)
        if config.causal:
            _causal(result, model, tokenizer, held, config, progress)
    result.provenance = {
        **_provenance(key, checkpoint, model, tokenized, held, config, scorer_params),
        **result.provenance,  # what the measures recorded (the head-overlap interval)
    }
    _save(result, accumulators, folder)
    return result


def _collect(model, tokenizer, tokenized, config, checkpoint, progress):
    """The accumulators after one pass, the pooled counts and the per-sequence counts."""
    from interp.activations import (
        FiringCounts,
        HeadNorms,
        MeanActivation,
        SequenceFiringCounts,
        collect,
    )
    from interp.models import adapters
    from interp.specialization import lape, stats

    shape = adapters.shape(model)
    languages = list(tokenized.sequences)
    per_language = {code: len(seqs) for code, seqs in tokenized.sequences.items()}
    accumulators = {
        "firing": FiringCounts(languages, shape.num_layers, shape.intermediate_size),
        "per_sequence": SequenceFiringCounts(
            languages,
            shape.num_layers,
            shape.intermediate_size,
            per_language,
            chunk_size=config.chunk_size,
        ),
        "means": MeanActivation(languages, shape.num_layers, shape.intermediate_size, site="post"),
        "head_norms": HeadNorms(languages, shape.num_layers, shape.num_heads, shape.head_dim),
    }
    collect(
        model,
        tokenizer,
        tokenized.sequences,
        list(accumulators.values()),
        backend=config.backend,
        batch_size=config.batch_size,
        progress=progress,
    )
    firing, per_sequence = accumulators["firing"], accumulators["per_sequence"]
    counts = lape.NeuronCounts(
        firing.fires.numpy(), firing.tokens.numpy(), tuple(languages), source=str(checkpoint)
    )
    seqs = stats.SequenceCounts(
        per_sequence.fires.numpy(),
        per_sequence.chunk_language.numpy(),
        per_sequence.tokens.numpy(),
        tuple(languages),
        source=f"{checkpoint} per-sequence counts",
    )
    return accumulators, counts, seqs


def _score_neurons(result: Analysis, seqs, config: AnalysisConfig) -> dict[str, dict[str, Any]]:
    """Every scorer's selection, bootstrap, label null and script classes; the index.
    Returns the parameters each scorer ran with."""
    from interp.specialization import lape, stats
    from interp.specialization.scripts import script_class_counts, script_class_table

    languages = seqs.languages
    scorer_params = {name: _scorer_params(name, config, seqs) for name in config.scorers}
    classify = partial(script_class_counts, languages=languages)
    for name, params in scorer_params.items():
        result.neurons[name] = _neuron_selection(name, params, result.counts, lambda: seqs)
        samples = None
        if config.n_boot:
            result.bootstrap[name] = stats.bootstrap(
                seqs, name, n_boot=config.n_boot, seed=config.seed, summarize=classify, **params
            )
            samples = result.bootstrap[name].summary_samples
        if not getattr(lape.make_scorer(name, **params), "one_language", False):
            # (a scorer that gives each neuron one language cannot show a script's neurons)
            result.script_classes[name] = script_class_table(
                result.neurons[name].mask(), samples, languages
            )
        if config.n_perm:
            result.permutation[name] = stats.permutation_null(
                seqs, name, n_perm=config.n_perm, seed=config.seed, **params
            ).per_language
    result.index = stats.specialization_index(seqs, n_boot=config.n_boot, seed=config.seed)
    return scorer_params


def _score_heads(result: Analysis, model, tokenizer, tokenized, config, progress) -> None:
    """LAHIS importance and each language's top heads."""
    from interp.specialization import heads as head_scores
    from interp.specialization.lahis import lahis

    importance = lahis(
        model,
        tokenizer,
        tokenized.sequences,
        samples_per_language=config.lahis_samples,
        max_length=config.lahis_max_length,
        seed=config.seed,
        progress=progress,
    )
    result.head_importance = importance.importance
    result.heads = head_scores.top_heads(
        importance.importance,
        tuple(tokenized.sequences),
        frac=config.head_frac,
        min_heads=config.min_top_heads,
    )
    if config.n_boot:
        from interp.specialization.head_stability import from_lahis

        stability = from_lahis(
            importance,
            frac=config.head_frac,
            min_heads=config.min_top_heads,
            n_boot=config.n_boot,
            seed=config.seed,
        )
        result.head_frequency = stability.heads[
            ["language", "layer", "head", "importance", "selected", "frequency"]
        ]
        result.head_overlap = stability.overlap
        result.provenance["head_overlap"] = {
            "mean": stability.mean_overlap,
            "lo": stability.mean_overlap_lo,
            "hi": stability.mean_overlap_hi,
        }


def _ablate(result: Analysis, model, tokenizer, held, config, progress) -> None:
    """The dark-diagonal tables of the LAPE neurons and the top heads on held-out text."""
    from interp.specialization.ablation import dark_diagonal

    neuron_scorer = (
        "lape-paper" if "lape-paper" in result.neurons else next(iter(result.neurons), None)
    )
    units = {"neurons": result.neurons[neuron_scorer] if neuron_scorer else None}
    if result.heads is not None:
        units["heads"] = result.heads
    for kind, selection in units.items():
        if selection is None:
            continue
        result.ablation[kind] = dark_diagonal(
            model,
            tokenizer,
            held.sequences,
            selection,
            random_repeats=config.ablation_random_repeats,
            seed=config.seed,
            batch_size=config.batch_size,
            max_length=None,
            progress=progress,
        ).table


def _causal(result: Analysis, model, tokenizer, held, config, progress) -> None:
    """Causal neuron and head sets at the activation sets' sizes, and their overlaps."""
    from interp.specialization.causal import causal_heads, causal_neurons

    lape = result.neurons.get("lape-paper")
    if lape is not None:
        neurons = causal_neurons(
            model,
            tokenizer,
            held.sequences,
            like=lape,
            batch_size=config.batch_size,
            progress=progress,
        )
        result.causal["neurons"] = neurons.table()
        for name in ("lape-paper", "null-fdr"):
            if name in result.neurons:
                result.causal_overlap[f"neurons:{name}"] = neurons.jaccard_with(
                    result.neurons[name]
                )
    if result.heads is not None:
        # (few units, and attribution ranks heads poorly: every head is zeroed exactly)
        heads = causal_heads(
            model,
            tokenizer,
            held.sequences,
            like=result.heads,
            screen=None,
            batch_size=config.batch_size,
            progress=progress,
        )
        result.causal["heads"] = heads.table()
        result.causal_overlap["heads:lahis"] = heads.jaccard_with(result.heads)


def _provenance(key, checkpoint, model, tokenized, held, config, scorer_params) -> dict:
    from interp.io import checkpoint_fingerprint
    from interp.models import adapters
    from interp.train.checkpoints import package_versions

    shape = adapters.shape(model)
    return {
        "key": key,
        "checkpoint": str(checkpoint),
        "model_fingerprint": checkpoint_fingerprint(checkpoint),
        "corpus_fingerprint": _corpus_fingerprint(tokenized.sequences),
        "heldout_fingerprint": _corpus_fingerprint(held.sequences) if held else None,
        "languages": list(tokenized.sequences),
        "tokens": tokenized.tokens,
        "sequences": {code: len(seqs) for code, seqs in tokenized.sequences.items()},
        "shape": {
            "num_layers": shape.num_layers,
            "intermediate_size": shape.intermediate_size,
            "num_heads": shape.num_heads,
        },
        "config": asdict(config),
        "scorer_params": scorer_params,  # as used (the calibrated absolute thresholds)
        "versions": package_versions(),
    }


def _save(result: Analysis, accumulators: dict[str, Any], folder: Path) -> None:
    """Every accumulator and table into `folder`, which lands in one rename."""
    import torch

    from interp.io import atomic_directory, atomic_write_json

    with atomic_directory(folder, overwrite=True) as tmp:
        for name, accumulator in accumulators.items():
            accumulator.save(tmp / f"{name}.safetensors")
        for name, selection in result.neurons.items():
            selection.table.to_parquet(tmp / f"neurons_{name}.parquet")
        for name, boot in result.bootstrap.items():
            _save_bootstrap(tmp, name, boot)
        for name, table in result.permutation.items():
            table.to_parquet(tmp / f"permutation_{name}.parquet")
        for name, table in result.script_classes.items():
            table.to_parquet(tmp / f"script_classes_{name}.parquet")
        result.head_norms.to_parquet(tmp / "head_norms.parquet")
        result.index.to_frame().to_parquet(tmp / "specialization_index.parquet")
        if result.head_importance is not None:
            from safetensors.torch import save_file

            save_file(
                {"importance": torch.as_tensor(result.head_importance).contiguous()},
                str(tmp / "lahis.safetensors"),
            )
            result.heads.table.to_parquet(tmp / "heads.parquet")
        for name in ("head_frequency", "head_overlap"):
            if getattr(result, name) is not None:
                getattr(result, name).to_parquet(tmp / f"{name}.parquet")
        for kind, table in result.ablation.items():
            table.to_parquet(tmp / f"ablation_{kind}.parquet")
        for kind, table in result.causal.items():
            table.to_parquet(tmp / f"causal_{kind}.parquet")
        for name, table in result.causal_overlap.items():
            table.to_parquet(tmp / f"causal_overlap_{name.replace(':', '_')}.parquet")
        atomic_write_json(tmp / "provenance.json", result.provenance)


def _scorer_params(name: str, config: AnalysisConfig, seqs: Any) -> dict[str, Any]:
    """The parameters a scorer runs with: the LAPE budget, or for the absolute rule with
    `calibrate_absolute` its thresholds read off this model's label-shuffled null."""
    if name.startswith("lape"):
        return {"top_frac": config.top_frac}
    if name == "absolute" and config.calibrate_absolute:
        from interp.specialization.lape import scorer_params
        from interp.specialization.nulltest import calibrate_absolute

        calibration = calibrate_absolute(seqs, ratio=2.0, seed=config.seed)
        return scorer_params(calibration.scorer)
    return {}


def _neuron_selection(name: str, params: dict[str, Any], counts: Any, sequences) -> Any:
    """One scorer's selection: from the pooled counts, or, for a scorer that tests sequences
    (null-fdr), from the per-sequence counts `sequences()` gives (read only then)."""
    from interp.specialization import lape

    scorer = lape.make_scorer(name, **params)
    if getattr(scorer, "needs_sequences", False):
        return scorer.score(sequences())
    return lape.score(counts, scorer)


def load_analysis(folder: str | os.PathLike) -> Analysis:
    """Reload an analysis folder written by `analyze` (no model needed)."""
    import pandas as pd

    from interp.activations import load_accumulator
    from interp.errors import DataError
    from interp.specialization import heads as head_scores
    from interp.specialization import lape

    folder = Path(folder)
    provenance_file = folder / "provenance.json"
    if not provenance_file.is_file():
        raise DataError(
            f"{folder}: no provenance.json, so no finished analysis here. Fix: run `interp score` first"
        )
    provenance = json.loads(provenance_file.read_text())
    languages = tuple(provenance["languages"])
    firing = load_accumulator(folder / "firing.safetensors")
    counts = lape.NeuronCounts(
        firing.fires.numpy(), firing.tokens.numpy(), languages, source=str(folder)
    )
    result = Analysis(folder=folder, provenance=provenance, counts=counts, from_cache=True)
    config = provenance["config"]
    used = provenance.get("scorer_params", {})

    def sequences():
        from interp.specialization.stats import SequenceCounts

        per_sequence = load_accumulator(folder / "per_sequence.safetensors")
        return SequenceCounts(
            per_sequence.fires.numpy(),
            per_sequence.chunk_language.numpy(),
            per_sequence.tokens.numpy(),
            languages,
            source=f"{folder} per-sequence counts",
        )

    for name in config["scorers"]:
        default = {"top_frac": config["top_frac"]} if name.startswith("lape") else {}
        # selections are cheap to recompute from the counts, and equal to the saved tables
        result.neurons[name] = _neuron_selection(name, used.get(name, default), counts, sequences)
        boot = _load_bootstrap(folder, name, result.neurons[name])
        if boot is not None:
            result.bootstrap[name] = boot
        perm = folder / f"permutation_{name}.parquet"
        if perm.is_file():
            result.permutation[name] = pd.read_parquet(perm)
        classes = folder / f"script_classes_{name}.parquet"
        if classes.is_file():
            result.script_classes[name] = pd.read_parquet(classes)
    result.head_norms = pd.read_parquet(folder / "head_norms.parquet")
    index_file = folder / "specialization_index.parquet"
    if index_file.is_file():
        from interp.specialization.stats import SpecializationIndex

        row = pd.read_parquet(index_file).iloc[0]
        result.index = SpecializationIndex(**{k: row[k].item() for k in row.index})
    if (folder / "lahis.safetensors").is_file():
        from safetensors.torch import load_file

        result.head_importance = load_file(str(folder / "lahis.safetensors"))["importance"]
        result.heads = head_scores.top_heads(
            result.head_importance,
            languages,
            frac=config["head_frac"],
            min_heads=config.get("min_top_heads", 1),
        )
    for kind in ("neurons", "heads"):
        if (folder / f"causal_{kind}.parquet").is_file():
            result.causal[kind] = pd.read_parquet(folder / f"causal_{kind}.parquet")
    for name in CAUSAL_OVERLAPS:
        path = folder / f"causal_overlap_{name.replace(':', '_')}.parquet"
        if path.is_file():
            result.causal_overlap[name] = pd.read_parquet(path)
    for name in ("head_frequency", "head_overlap"):
        if (folder / f"{name}.parquet").is_file():
            setattr(result, name, pd.read_parquet(folder / f"{name}.parquet"))
    for kind in ("neurons", "heads"):
        path = folder / f"ablation_{kind}.parquet"
        if path.is_file():
            result.ablation[kind] = pd.read_parquet(path)
    return result
