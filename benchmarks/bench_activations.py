"""Cost of neuron statistics through each backend, relative to a plain HF forward.

For each model shape, every round times one batch through each route in a rotating order
(after warm-up rounds); a route's ratio is the median over rounds of its time divided by the
baseline's time in the same round. Routes:

- hf decoder: `model.model(...)`, the decoder stack without the LM head, eager attention, no
  hooks. The baseline: every backend stops after the last decoder layer, so this is the same
  work. All routes run the same model object (backends are built and undone around their
  timed run).
- hf full: `model(...)` with logits (what a user would call), for reference.
- torch / transformer_lens / nnsight: the collector's backends feeding FiringCounts (with
  `--stats all`, also MeanActivation("post") and HeadNorms).

Then the peak resident memory of the torch path over 1e4 ... 1e6 tokens, each size in a fresh
process (models built in memory, random weights and tokens).

    python benchmarks/bench_activations.py --quick
    python benchmarks/bench_activations.py --models 32m qwen0.5b --rounds 7 --batch 16 --seq 64
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHAPES = {
    # about 1.2M parameters
    "tiny": dict(hidden_size=64, num_layers=2, intermediate_size=256, num_heads=4, num_kv_heads=2),
    # about 32M parameters with an 8192 vocabulary
    "32m": dict(hidden_size=512, num_layers=6, intermediate_size=2048, num_heads=8, num_kv_heads=8),
    # Qwen2.5-0.5B's shape with its full 151936 vocabulary and tied embeddings (494M)
    "qwen0.5b": dict(
        hidden_size=896,
        num_layers=24,
        intermediate_size=4864,
        num_heads=14,
        num_kv_heads=2,
        tie_word_embeddings=True,
    ),
}
VOCAB = {"tiny": 1024, "32m": 8192, "qwen0.5b": 151936}


def build(shape: str, tokenizer_dir: Path, seed: int = 0):
    """A random qwen2 model of `shape` (eager attention) in memory, and the tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM

    from interp.models.loading import load_tokenizer
    from interp.models.tiny import tiny_config

    config = tiny_config("qwen2", VOCAB[shape], **SHAPES[shape])
    config._attn_implementation = "eager"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    return model, load_tokenizer(tokenizer_dir)


def make_tokenizer(root: Path) -> Path:
    from interp.models.tiny import sample_texts, train_tokenizer

    out = root / "tokenizer"
    train_tokenizer(sample_texts(), 400, out)
    return out


def time_routes(shape: str, tokenizer_dir: Path, args: argparse.Namespace) -> dict:
    import torch

    from interp.activations import (
        BatchInfo,
        FiringCounts,
        HeadNorms,
        MeanActivation,
        make_backend,
        position_ids_from_mask,
    )
    from interp.models import adapters

    model, tokenizer = build(shape, tokenizer_dir)
    params = sum(p.numel() for p in model.parameters())
    s = adapters.shape(model)
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(1, len(tokenizer), (args.batch, args.seq), generator=generator)
    mask = torch.ones_like(ids)
    positions = position_ids_from_mask(mask)
    batch = BatchInfo.build(mask, torch.zeros(args.batch, dtype=torch.long), single_language=0)

    accumulators = [FiringCounts(["xx"], s.num_layers, s.intermediate_size)]
    if args.stats == "all":
        accumulators += [
            MeanActivation(["xx"], s.num_layers, s.intermediate_size, site="post"),
            HeadNorms(["xx"], s.num_layers, s.num_heads, s.head_dim),
        ]
    sites = sorted({site for acc in accumulators for site in acc.sites})

    def deliver(site, layer, x):
        if site != "resid_post":
            for acc in accumulators:
                if site in acc.sites:
                    acc.update(site, layer, x, batch)

    def timed(fn) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    def hf_decoder() -> float:
        with torch.inference_mode():
            return timed(
                lambda: model.model(
                    input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False
                )
            )

    def hf_full() -> float:
        with torch.inference_mode():
            return timed(
                lambda: model(
                    input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False
                )
            )

    def backend_route(name: str):
        # Every route runs the same model object. TransformerLens and nnsight patch the model
        # they wrap, so each backend is built before its run and undone after it; only the
        # run is timed.
        def route() -> float:
            with make_backend(name, model, tokenizer, sites) as backend:
                return timed(lambda: backend.run(ids, mask, positions, deliver))

        return route

    routes = {"hf decoder": hf_decoder, "hf full": hf_full}
    routes.update({name: backend_route(name) for name in args.backends})

    names = list(routes)
    times = {name: [] for name in names}
    for round_index in range(args.warmup + args.rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:  # rotate the order every round
            elapsed = routes[name]()
            if round_index >= args.warmup:
                times[name].append(elapsed)
    base = times["hf decoder"]
    return {
        "shape": shape,
        "params": params,
        "tokens_per_batch": args.batch * args.seq,
        "median_s": {name: statistics.median(t) for name, t in times.items()},
        "ratio": {
            name: statistics.median(a / b for a, b in zip(t, base, strict=True))
            for name, t in times.items()
        },
    }


def memory_child(tokens: int, tokenizer_dir: Path, args: argparse.Namespace) -> None:
    """Collect over `tokens` random tokens with the torch backend; print RSS numbers as JSON."""
    import torch

    from interp.activations import collect, for_model

    model, tokenizer = build(args.memory_model, tokenizer_dir)
    n_seq = max(1, tokens // args.seq)
    generator = torch.Generator().manual_seed(2)
    data = {"xx": torch.randint(1, len(tokenizer), (n_seq, args.seq), generator=generator)}
    accumulators = for_model(model, ["xx"])
    collect(model, tokenizer, {"xx": data["xx"][:1]}, accumulators, progress=False)  # warm up
    _reset_peak_rss()  # the peak so far is imports and model building, not collecting
    before = _status_mb("VmRSS")
    collect(model, tokenizer, data, accumulators, batch_size=args.batch, progress=False)
    peak = _status_mb("VmHWM")
    if peak != peak:  # no /proc: fall back to the lifetime peak
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"tokens": n_seq * args.seq, "rss_before_mb": before, "peak_mb": peak}))


def _reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS counter of this process (Linux; no-op elsewhere)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass


def _status_mb(field: str) -> float:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def memory_scaling(tokenizer_dir: Path, args: argparse.Namespace) -> list[dict]:
    rows = []
    for tokens in args.memory_tokens:
        command = [
            sys.executable,
            __file__,
            "--memory-child",
            str(tokens),
            "--tokenizer-dir",
            str(tokenizer_dir),
            "--memory-model",
            args.memory_model,
            "--batch",
            str(args.batch),
            "--seq",
            str(args.seq),
        ]
        if args.threads:
            command += ["--threads", str(args.threads)]
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["32m", "qwen0.5b"], choices=SHAPES)
    parser.add_argument("--backends", nargs="+", default=["torch", "transformer_lens", "nnsight"])
    parser.add_argument("--stats", choices=["firing", "all"], default="firing")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--memory-tokens", nargs="*", type=int, default=[10_000, 100_000, 1_000_000]
    )
    parser.add_argument("--memory-model", default="tiny", choices=SHAPES)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--quick", action="store_true", help="small sizes, few rounds")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tokenizer-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child is not None:
        memory_child(args.memory_child, args.tokenizer_dir, args)
        return
    if args.quick:
        args.models = ["32m"]
        args.rounds, args.warmup = 3, 1
        args.batch, args.seq = 8, 64
        args.memory_tokens = [10_000, 100_000]

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
        f"load average {load:.1f} at start"
    )
    with tempfile.TemporaryDirectory() as root:
        tokenizer_dir = make_tokenizer(Path(root))
        for shape in args.models:
            result = time_routes(shape, tokenizer_dir, args)
            print(
                f"\n{shape}: {result['params'] / 1e6:.1f}M params, batch {args.batch} x "
                f"{args.seq} = {result['tokens_per_batch']} tokens, stats={args.stats}, "
                f"median of {args.rounds} rounds after {args.warmup} warm-up"
            )
            print(f"  {'route':<18}{'median s':>10}{'ratio':>8}")
            for name, seconds in result["median_s"].items():
                print(f"  {name:<18}{seconds:>10.4f}{result['ratio'][name]:>8.3f}")
        if args.memory_tokens:
            rows = memory_scaling(tokenizer_dir, args)
            first = rows[0]["peak_mb"]
            print(f"\npeak RSS of the torch path ({args.memory_model} model, all statistics):")
            print(f"  {'tokens':>10}{'before MB':>11}{'peak MB':>10}{'growth':>9}")
            for row in rows:
                growth = row["peak_mb"] / first - 1
                print(
                    f"  {row['tokens']:>10}{row['rss_before_mb']:>11.1f}{row['peak_mb']:>10.1f}"
                    f"{growth:>9.1%}"
                )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
