"""Time the per-neuron language tests, BH and the null-fdr selection on a Qwen2.5-0.5B-sized grid.

24 layers x 4,864 neurons, 12 languages x 2,000 sequences (24,000): 2.8e9 per-sequence counts,
22 GB as float64, so the counts are never held whole. The benchmark builds `--distinct` int32
layers [24,000, 4,864] once (outside the timing; 467 MB each) and hands layer i = layer
i mod distinct to `language_tests` through a `LayerStream`, which converts one block of
sequences at a time. A share of the units (`--planted`) fires mostly in one language, so the
selection is not empty. Each round times `language_tests`, then BH over all neurons, then
`NullFdr.select_tests`, after `--warmup` untimed rounds; the median over rounds is printed,
with the peak memory the tests allocate (tracemalloc: numpy reports its buffers to it) and
the process's peak resident size (which includes the stored layers). Target: under 30 s on 2
cores.

    python benchmarks/bench_nulltest.py
    python benchmarks/bench_nulltest.py --rounds 5 --threads 1 --fixed-length
    python benchmarks/bench_nulltest.py --layers 4 --rounds 1 --nulls 10   # the permutation tools
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
import tracemalloc

LANGUAGES = ("en", "de", "fr", "es", "ru", "zh", "ja", "ar", "bn", "sw", "ko", "tr")


def build(args, np):
    """(layers, language, tokens, planted units) with `args.distinct` distinct int32 layers."""
    rng = np.random.default_rng(args.seed)
    n_lang = len(LANGUAGES)
    n_seq = n_lang * args.per_language
    language = np.repeat(np.arange(n_lang), args.per_language)
    if args.fixed_length:
        tokens = np.full(n_seq, args.tokens, dtype=np.int64)
    else:
        tokens = rng.integers(args.tokens // 2, args.tokens + 1, size=n_seq)
    layers = []
    for _ in range(args.distinct):
        rate = np.exp(rng.uniform(np.log(1e-3), np.log(0.5), size=args.units)).astype(np.float32)
        gain = rng.gamma(20.0, 1 / 20.0, size=(n_seq, 1)).astype(np.float32)
        # mean rate x tokens, spread uniformly over [0, 2 x mean]: fast to draw, overdispersed
        scale = (2.0 * tokens[:, None]).astype(np.float32) * gain
        planted = rng.choice(args.units, size=int(args.planted * args.units), replace=False)
        boost = np.ones((n_lang, args.units), dtype=np.float32)
        boost[rng.integers(0, n_lang, size=planted.size), planted] = 10.0
        layer = np.empty((n_seq, args.units), dtype=np.int32)
        for start in range(0, n_seq, 2000):  # in slices, to keep the float32 temporaries small
            rows = slice(start, start + 2000)
            mean = np.minimum(rate[None] * boost[language[rows]], 0.95) * scale[rows]
            draw = rng.random(mean.shape, dtype=np.float32) * mean
            layer[rows] = np.minimum(draw, tokens[rows, None]).astype(np.int32)
        layers.append(layer)
    return layers, language, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--units", type=int, default=4864)
    parser.add_argument("--per-language", type=int, default=2000, help="sequences per language")
    parser.add_argument("--tokens", type=int, default=1024, help="max tokens per sequence")
    parser.add_argument("--fixed-length", action="store_true", help="every sequence --tokens")
    parser.add_argument("--distinct", type=int, default=3, help="distinct layers stored")
    parser.add_argument("--planted", type=float, default=0.01, help="share of specific units")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--nulls",
        type=int,
        default=0,
        metavar="N_PERM",
        help="also time calibrate_absolute and budget_null with N_PERM label shuffles (once)",
    )
    args = parser.parse_args()
    if args.threads:  # before numpy loads its BLAS
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = str(args.threads)

    import numpy as np

    from interp.specialization.nulltest import (
        LayerStream,
        NullFdr,
        benjamini_hochberg,
        budget_null,
        calibrate_absolute,
    )
    from interp.specialization.nulltest import language_tests as run_tests

    start = time.perf_counter()
    layers, language, tokens = build(args, np)
    built = time.perf_counter() - start
    stream = LayerStream(
        layer=lambda i: layers[i % len(layers)],
        num_layers=args.layers,
        language=language,
        tokens=tokens,
        languages=LANGUAGES,
    )
    scorer = NullFdr()
    times: dict[str, list[float]] = {"language_tests": [], "bh": [], "select": [], "total": []}
    peak = 0
    for round_index in range(args.warmup + args.rounds):
        tracemalloc.start()
        t0 = time.perf_counter()
        tests = run_tests(stream)
        t1 = time.perf_counter()
        benjamini_hochberg(tests.p)
        t2 = time.perf_counter()
        mask = scorer.select_tests(tests)  # runs BH again, as a caller would
        t3 = time.perf_counter()
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        if round_index >= args.warmup:
            for name, value in zip(times, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
                times[name].append(value)
        del tests

    n_seq = language.size
    n_counts = n_seq * args.layers * args.units
    print(
        f"grid: {args.layers} layers x {args.units} neurons, {len(LANGUAGES)} languages x "
        f"{args.per_language} sequences ({n_seq}), tokens "
        f"{'= ' if args.fixed_length else '<= '}{args.tokens}; {n_counts:.2e} counts "
        f"({n_counts * 8 / 2**30:.0f} GiB as float64), streamed from {args.distinct} distinct "
        f"int32 layers built in {built:.1f} s; {args.rounds} rounds after {args.warmup} warm-up"
    )
    for name, values in times.items():
        print(
            f"  {name:15s} median {statistics.median(values):7.2f} s  "
            f"(min {min(values):.2f}, max {max(values):.2f})"
        )
    total = statistics.median(times["total"])
    per_layer = statistics.median(times["language_tests"]) / args.layers
    print(f"  per layer: {per_layer:.3f} s; {n_counts / total / 1e6:.0f} M counts/s")
    selected = mask.any(axis=0)
    print(
        f"  selected {int(selected.sum())} neurons ({selected.mean():.2%}), "
        f"{int(mask.sum())} (neuron, language) pairs; planted share {args.planted:.2%} of the "
        f"units of each distinct layer"
    )
    stored = sum(layer.nbytes for layer in layers)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    print(
        f"  peak memory allocated by the tests: {peak / 2**20:.0f} MiB; process peak RSS "
        f"{rss / 2**30:.2f} GiB (of which {stored / 2**30:.2f} GiB stored layers); "
        f"target < 30 s: {'ok' if total < 30 else 'MISSED'}"
    )
    if args.nulls:
        for name, run in (
            ("calibrate_absolute", lambda: calibrate_absolute(stream, n_perm=args.nulls)),
            ("budget_null", lambda: budget_null(stream, "lape-paper", n_perm=args.nulls)),
        ):
            t0 = time.perf_counter()
            run()
            elapsed = time.perf_counter() - t0
            print(
                f"  {name} with {args.nulls} shuffles: {elapsed:.1f} s "
                f"({elapsed / args.nulls:.2f} s per shuffle, one run)"
            )


if __name__ == "__main__":
    main()
