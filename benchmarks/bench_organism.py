"""Time the model organism end to end and print its test-split accuracy table.

    python benchmarks/bench_organism.py                      # the default preset
    python benchmarks/bench_organism.py --preset smoke --steps 50

Stages timed: building the world, the mixture, the tokenizer (inside training), training,
evaluation. Training throughput is tokens seen / training seconds. The checkpoint goes to a
temporary folder unless --out is given.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default", choices=("smoke", "default"))
    parser.add_argument("--steps", type=int, help="optimizer steps (default: the preset's)")
    parser.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    parser.add_argument("--out", help="keep the checkpoint here (default: a temporary folder)")
    args = parser.parse_args(argv)

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    start = time.perf_counter()
    import torch  # noqa: F401  (import time is reported apart from the stages)

    from interp.facts import build_world
    from interp.train.corpus import build_mixture
    from interp.train.organism import preset, results_table, train_organism

    imports_s = time.perf_counter() - start
    config = preset(args.preset).with_overrides(steps=args.steps, threads=args.threads)

    t0 = time.perf_counter()
    facts, _report = build_world()
    world_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    mixture = build_mixture(facts, config.mixture)
    mixture_s = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp) / "organism" / "base"
        t0 = time.perf_counter()
        result = train_organism(facts, out, config, overwrite=True)
        run_s = time.perf_counter() - t0
    manifest = result.manifest
    train_s = manifest["train_seconds"]
    print(
        f"\norganism preset={args.preset}, {manifest['n_parameters']:,} parameters, "
        f"{os.cpu_count()} cores, torch threads {config.threads or os.cpu_count()}"
    )
    print(f"  imports           {imports_s:7.1f} s")
    print(
        f"  build world       {world_s:7.1f} s  ({len(facts)} facts, {len(facts.languages)} "
        "languages)"
    )
    print(
        f"  mixture           {mixture_s:7.1f} s  ({len(mixture)} documents, "
        f"{manifest['tokens_per_epoch']:,} tokens per epoch)"
    )
    print(
        f"  train             {train_s:7.1f} s  ({manifest['steps']} steps, "
        f"{manifest['tokens_seen'] / max(train_s, 1e-9):,.0f} tokens/s, final loss "
        f"{manifest['final_loss']})"
    )
    print(f"  tokenizer + eval + save {run_s - train_s:5.1f} s")
    print(f"  total             {time.perf_counter() - start:7.1f} s\n")
    print(results_table(result.evaluation))
    return 0


if __name__ == "__main__":
    sys.exit(main())
