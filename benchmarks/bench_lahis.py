"""Cost of LAHIS per sample, relative to a forward + backward with the weights requiring grad.

Both routes see the same token sequences on the same random qwen2-shaped model (about 32M
parameters by default, built in memory). Each round times `--samples` sequences through each
route, in an order that alternates between rounds, after `--warmup` untimed rounds; the ratio
is the median over rounds of (LAHIS time / fwd+bwd time in the same round).

- lahis: `lahis_language` (frozen weights, mask hooks on every o_proj, backward to the mask
  only, accumulation, one AdamW step per sample; its setup is inside the timing);
- fwd+bwd: the same cross-entropy, `loss.backward()` with every weight requiring grad
  (gradients set to None after each sample, as a training loop would).

    python benchmarks/bench_lahis.py
    python benchmarks/bench_lahis.py --seq 256 --rounds 9 --threads 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# about 32M parameters with an 8192 vocabulary (the shape bench_activations.py calls "32m")
SHAPE = dict(hidden_size=512, num_layers=6, intermediate_size=2048, num_heads=8, num_kv_heads=8)
VOCAB = 8192


def build(device: str, dtype: str, seed: int = 0):
    import torch
    from transformers import AutoModelForCausalLM

    from interp.models.tiny import tiny_config

    config = tiny_config("qwen2", VOCAB, **SHAPE)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
    return model.to(device).eval()


def forward_backward(model, sequences, device) -> None:
    """Plain fwd+bwd per sample with every weight requiring grad."""
    import torch

    for seq in sequences:
        ids = torch.as_tensor(seq, device=device)[None]
        logits = model(input_ids=ids, use_cache=False).logits
        loss = torch.nn.functional.cross_entropy(logits[0, :-1].float(), ids[0, 1:])
        loss.backward()
        model.zero_grad(set_to_none=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq", type=int, default=128, help="tokens per sample")
    parser.add_argument("--samples", type=int, default=4, help="samples per route per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()

    import torch

    from interp.specialization.lahis import lahis_language

    if args.threads:
        torch.set_num_threads(args.threads)
    model = build(args.device, args.dtype)
    n_params = sum(p.numel() for p in model.parameters())
    for p in model.parameters():
        p.requires_grad_(True)
    generator = torch.Generator().manual_seed(1)
    sequences = torch.randint(1, VOCAB, (args.samples, args.seq), generator=generator).tolist()

    def sync() -> None:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    routes = {
        "lahis": lambda: lahis_language(model, sequences),
        "fwd+bwd": lambda: forward_backward(model, sequences, args.device),
    }
    times: dict[str, list[float]] = {name: [] for name in routes}
    names = list(routes)
    for round_index in range(args.warmup + args.rounds):
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            sync()
            start = time.perf_counter()
            routes[name]()
            sync()
            elapsed = time.perf_counter() - start
            if round_index >= args.warmup:
                times[name].append(elapsed / args.samples)
    ratios = [a / b for a, b in zip(times["lahis"], times["fwd+bwd"], strict=True)]
    assert all(p.requires_grad for p in model.parameters()), "lahis left weights frozen"

    print(
        f"model: qwen2 {n_params / 1e6:.1f}M params, {args.device} {args.dtype}, "
        f"threads {torch.get_num_threads()}; {args.samples} samples x {args.seq} tokens per "
        f"round, {args.rounds} rounds after {args.warmup} warm-up"
    )
    for name in names:
        ms = [t * 1000 for t in times[name]]
        print(
            f"  {name:8s} per sample: median {statistics.median(ms):8.2f} ms  "
            f"(min {min(ms):.2f}, max {max(ms):.2f})"
        )
    print(
        f"  ratio lahis / fwd+bwd: median {statistics.median(ratios):.3f} "
        f"(min {min(ratios):.3f}, max {max(ratios):.3f})"
    )


if __name__ == "__main__":
    main()
