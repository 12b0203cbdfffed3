"""Screened causal scoring against naive one-at-a-time zeroing: time, and agreement of the sets.

Routes, all on the same model and the same held-out sequences (every language's sequences
pooled, `--batch` per forward pass):

- screened: `causal_neurons` / `causal_heads` with `--screen` (attribution for every unit,
  then exact zeroing of the screen * k candidates per language, `--unit-batch` units side
  by side per forward pass);
- exhaustive: the same function with screen=None (every unit zeroed exactly, side by side);
- naive: for every unit, `with ablate_neurons(model, {unit})` (or `ablate_heads`) then
  `sequence_losses` over the pooled sequences, one unit per pass; then the same selection rule
  (top k by relative effect, relative effect > 0). The reference the others are judged by.

Each round times every route, in an order that rotates between rounds, after `--warmup`
untimed rounds; the ratio naive / screened is the median over rounds of the ratios within a
round. Agreement: Jaccard per language of each route's selected set against naive's. Then,
from naive's exact effects and the screened run's attribution, the agreement a screen of
1, 2, 4, 8, 16 x k would reach (the candidates ranked by signed or by absolute relative
attribution), and how well attribution ranks the exact relative effects (Spearman).

Models: `--model tiny` (default) builds a random qwen2 of 2 layers x 128 neurons (the shape
`build_tiny` gives) in memory, with `--languages` "languages" of disjoint vocabularies;
`--model PATH` loads a trained checkpoint (e.g. checkpoints/default/base) and reads held-out
texts from the test split of `--facts` (default runs/default/facts).

    python benchmarks/bench_causal.py
    python benchmarks/bench_causal.py --model checkpoints/default/base --seqs 4 --k 20
    python benchmarks/bench_causal.py --unit heads --model checkpoints/default/base
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TINY = dict(hidden_size=64, num_layers=2, intermediate_size=128, num_heads=4, num_kv_heads=2)
TINY_VOCAB = 400
LANGUAGES = ("en", "de", "ja", "fr", "ru", "zh", "ar", "es")


def tiny_data(args):
    """A random tiny qwen2 and {language: sequences} over disjoint vocabulary ranges."""
    import torch
    from transformers import AutoModelForCausalLM

    from interp.models.tiny import tiny_config

    config = tiny_config("qwen2", TINY_VOCAB, **TINY)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(args.seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    generator = torch.Generator().manual_seed(args.seed + 1)
    languages = LANGUAGES[: args.languages]
    width = (TINY_VOCAB - 1) // len(languages)
    data = {
        lang: [
            torch.randint(
                1 + i * width, 1 + (i + 1) * width, (args.seq_len,), generator=generator
            ).tolist()
            for _ in range(args.seqs)
        ]
        for i, lang in enumerate(languages)
    }
    return model.eval(), data, "random qwen2 (build_tiny shape)"


def checkpoint_data(args):
    """A trained checkpoint and its held-out test statements, packed like the analysis does."""
    from interp.corpora import from_facts, tokenize
    from interp.facts.loading import load_facts
    from interp.models.loading import load_model

    model, tokenizer = load_model(args.model, device=args.device)
    facts = load_facts(args.facts)
    languages = [c for c in LANGUAGES if c in facts.languages][: args.languages]
    corpus = from_facts(facts, languages=languages, split="test")
    packed = tokenize(
        corpus, tokenizer, seq_len=args.seq_len, token_budget=args.seq_len * args.seqs
    ).sequences
    data = {lang: [list(s) for s in packed[lang][: args.seqs]] for lang in languages}
    return model.eval(), data, f"trained {args.model}"


def lape_selection(args, model, languages, top_frac):
    """LAPE (the paper's variant) from firing counts on the train split of `--facts`."""
    from interp.activations import FiringCounts, collect
    from interp.corpora import from_facts, tokenize
    from interp.facts.loading import load_facts
    from interp.models import adapters
    from interp.models.loading import load_tokenizer
    from interp.specialization.lape import NeuronCounts, score

    tokenizer = load_tokenizer(args.model)
    corpus = from_facts(load_facts(args.facts), languages=languages, split="train")
    packed = tokenize(corpus, tokenizer, seq_len=128, token_budget=args.lape_tokens).sequences
    size = adapters.shape(model)
    counts = FiringCounts(languages, size.num_layers, size.intermediate_size)
    collect(model, tokenizer, packed, counts, progress=False)
    return score(
        NeuronCounts(counts.fires.numpy(), counts.tokens.numpy(), tuple(languages)),
        "lape-paper",
        top_frac=top_frac,
    )


def naive(model, data, unit, k):
    """One unit per pass through ablation.py's public functions: (effect [L, layers, units],
    {language: selected set})."""
    import numpy as np

    from interp.models import adapters
    from interp.specialization.ablation import ablate, sequence_losses
    from interp.specialization.causal import relative

    size = adapters.shape(model)
    per_layer = size.intermediate_size if unit == "neurons" else size.num_heads
    languages = list(data)
    pooled = [s for lang in languages for s in data[lang]]
    bounds = np.cumsum([0] + [len(data[lang]) for lang in languages])

    def per_language() -> np.ndarray:
        nll, count = sequence_losses(model, pooled, batch_size=8)
        return np.array(
            [
                nll[a:b].sum() / count[a:b].sum()
                for a, b in zip(bounds[:-1], bounds[1:], strict=True)
            ]
        )

    base = per_language()
    effect = np.zeros((len(languages), size.num_layers, per_layer))
    for layer in range(size.num_layers):
        for index in range(per_layer):
            with ablate(model, {(layer, index)}, unit):
                effect[:, layer, index] = per_language() - base
    return effect, select(relative(effect), languages, k)


def select(rel, languages, k, allowed=None):
    """Per language: top k by relative effect among `allowed` flat units, relative > 0."""
    import numpy as np

    per_layer = rel.shape[2]
    out = {}
    for i, lang in enumerate(languages):
        flat = rel[i].ravel()
        pool = np.arange(flat.size) if allowed is None else np.asarray(sorted(allowed[lang]))
        order = pool[np.argsort(-flat[pool], kind="stable")][:k]
        out[lang] = {(int(f // per_layer), int(f % per_layer)) for f in order if flat[f] > 0}
    return out


def jaccards(a, b):
    from interp.compare import jaccard

    return {lang: jaccard(a[lang], b[lang]) for lang in a}


def spearman(x, y) -> float:
    import pandas as pd

    return float(pd.Series(x).corr(pd.Series(y), method="spearman"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="'tiny' or a checkpoint directory")
    parser.add_argument("--facts", default="runs/default/facts", help="facts for --model PATH")
    parser.add_argument("--unit", choices=("neurons", "heads"), default="neurons")
    parser.add_argument("--languages", type=int, default=3)
    parser.add_argument("--seqs", type=int, default=4, help="sequences per language")
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--k", type=int, default=8, help="units selected per language")
    parser.add_argument("--screen", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8, help="sequences per forward pass")
    parser.add_argument(
        "--unit-batch", type=int, default=None, help="units zeroed side by side (default: auto)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (CPU)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--lape",
        type=float,
        default=None,
        metavar="TOP_FRAC",
        help="with --model PATH (neurons): also score causally at the budget of a LAPE selection "
        "(firing counts on the train split, this top_frac) and print their overlap",
    )
    parser.add_argument("--lape-tokens", type=int, default=8192, help="tokens per language")
    args = parser.parse_args()

    import numpy as np
    import torch

    from interp.specialization.causal import (
        causal_units,
        relative,
        unit_effects,
    )

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.model == "tiny":
        model, data, label = tiny_data(args)
        model = model.to(args.device)
    else:
        model, data, label = checkpoint_data(args)
    languages = list(data)

    def sync() -> None:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    def scored(screen):
        return causal_units(
            model,
            None,
            data,
            unit=args.unit,
            k=args.k,
            screen=screen,
            batch_size=args.batch,
            unit_batch=args.unit_batch,
        )

    routes = {
        "screened": lambda: scored(args.screen),
        "exhaustive": lambda: scored(None),
        "naive": lambda: naive(model, data, args.unit, args.k),
    }
    names = list(routes)
    times: dict[str, list[float]] = {name: [] for name in names}
    results = {}
    for round_index in range(args.warmup + args.rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            sync()
            start = time.perf_counter()
            results[name] = routes[name]()
            sync()
            if round_index >= args.warmup:
                times[name].append(time.perf_counter() - start)

    screened, exhaustive = results["screened"], results["exhaustive"]
    naive_effect, naive_sets = results["naive"]
    n_layers, per_layer = screened.attribution.shape[1:]
    tokens = {lang: int(t) for lang, t in zip(languages, screened.tokens, strict=True)}
    print(
        f"model: {label}, {n_layers} layers x {per_layer} {args.unit}, {args.device}, threads "
        f"{torch.get_num_threads()}; {len(languages)} languages x {args.seqs} sequences x "
        f"{args.seq_len} tokens (predicted tokens {tokens}); k = {args.k}, screen = "
        f"{args.screen}, unit batch {args.unit_batch or 'auto'}; "
        f"{args.rounds} rounds after "
        f"{args.warmup} warm-up"
    )
    print(
        f"  exact zeroings: screened {screened.params['exact_units']} of {n_layers * per_layer} "
        f"units; exhaustive and naive {n_layers * per_layer}"
    )
    for name in names:
        s = times[name]
        print(
            f"  {name:10s} median {statistics.median(s):8.3f} s  (min {min(s):.3f}, "
            f"max {max(s):.3f})"
        )
    for name in ("screened", "exhaustive"):
        ratios = [n / t for n, t in zip(times["naive"], times[name], strict=True)]
        print(
            f"  speed-up naive / {name}: median {statistics.median(ratios):.2f}x "
            f"(min {min(ratios):.2f}, max {max(ratios):.2f})"
        )

    exact = np.nan_to_num(exhaustive.effect)
    print(
        "  exhaustive vs naive exact effects: max |difference| "
        f"{np.abs(exact - naive_effect).max():.2e} (largest |effect| "
        f"{np.abs(naive_effect).max():.2e})"
    )
    for name, result in (("screened", screened), ("exhaustive", exhaustive)):
        agree = jaccards(result.sets(), naive_sets)
        sizes = {lang: len(result.sets()[lang]) for lang in languages}
        print(
            f"  Jaccard {name} vs naive: "
            + ", ".join(f"{lang} {agree[lang]:.2f}" for lang in languages)
            + f"; mean {np.nanmean(list(agree.values())):.3f}; set sizes {sizes}"
        )

    rel_exact = relative(naive_effect)
    rel_attr = screened.relative_attribution
    rho = [spearman(rel_attr[i].ravel(), rel_exact[i].ravel()) for i in range(len(languages))]
    print(
        "  Spearman(relative attribution, exact relative effect) per language: "
        + ", ".join(f"{lang} {r:.3f}" for lang, r in zip(languages, rho, strict=True))
    )
    print("  agreement with naive a screen would reach (mean Jaccard; exact zeroings):")
    n_units = n_layers * per_layer
    for factor in (1, 2, 4, 8, 16):
        cells = []
        for rule in ("signed", "absolute"):
            flat = rel_attr.reshape(len(languages), -1)
            key = flat if rule == "signed" else np.abs(flat)
            picked = {
                lang: set(np.argsort(-key[i], kind="stable")[: min(n_units, factor * args.k)])
                for i, lang in enumerate(languages)
            }
            union = set().union(*picked.values())
            allowed = {lang: union for lang in languages}
            agree = jaccards(select(rel_exact, languages, args.k, allowed), naive_sets)
            cells.append(f"{rule} {np.nanmean(list(agree.values())):.3f} ({len(union)})")
        print(f"    screen {factor:2d}: " + ", ".join(cells))

    if args.lape is not None and args.model != "tiny" and args.unit == "neurons":
        lape = lape_selection(args, model, languages, args.lape)
        start = time.perf_counter()
        causal = causal_units(
            model, None, data, unit="neurons", like=lape, screen=args.screen, batch_size=args.batch
        )
        elapsed = time.perf_counter() - start
        print(
            f"  vs LAPE (lape-paper, top_frac {args.lape}, {args.lape_tokens} train tokens per "
            f"language): causal at LAPE's budget in {elapsed:.1f} s"
        )
        print(causal.jaccard_with(lape).to_string(index=False))
        rel = causal.relative_effect
        lape_units = sorted(set().union(*lape.sets().values()))
        effect, _, _ = unit_effects(model, data, lape_units, batch_size=args.batch)
        lape_rel = {u: r for u, r in zip(lape_units, relative(effect.T).T, strict=True)}
        for i, lang in enumerate(languages):
            theirs = [lape_rel[u][i] for u in lape.sets()[lang]]
            mine = [rel[i][u] for u in causal.sets()[lang]]
            print(
                f"    {lang}: exact relative effect of LAPE's {len(theirs)} units: median "
                f"{np.median(theirs) if theirs else float('nan'):.2e}, > 0 for "
                f"{sum(r > 0 for r in theirs)}; of the causal set's {len(mine)}: median "
                f"{np.median(mine) if mine else float('nan'):.2e}"
            )


if __name__ == "__main__":
    main()
