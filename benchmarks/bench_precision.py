"""Organism training speed: the precision `interp.runtime` chooses vs the other one, and the
slowdown when another busy process shares the machine (fixed threads vs the governor).

    python benchmarks/bench_precision.py            # default organism shape, 16 x 128 tokens
    python benchmarks/bench_precision.py --rounds 3 --steps 3

Prints tokens/s per precision (warm-up, interleaved rounds, medians) and their ratio, then
step times on an idle machine, with one competing busy process and all threads, and with the
competitor and the thread governor, as ratios to idle. The competitor is a separate Python
process spinning on one core.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time


def _spin(stop) -> None:
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def _model():
    import torch
    from transformers import AutoModelForCausalLM

    from interp.models.tiny import tiny_config
    from interp.train.organism import PRESETS

    c = PRESETS["default"]
    config = tiny_config(
        "qwen2",
        c.vocab_size,
        hidden_size=c.hidden_size,
        num_layers=c.num_layers,
        intermediate_size=c.intermediate_size,
        num_heads=c.num_heads,
        num_kv_heads=c.num_kv_heads,
        max_position_embeddings=512,
        eos_token_id=0,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(
        config, dtype=torch.float32, attn_implementation="sdpa"
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = torch.randint(0, c.vocab_size, (c.batch_size, c.seq_len))
    return model, optimizer, batch


def _step_time(model, optimizer, batch, bf16: bool, steps: int, governor=None) -> float:
    import torch

    start = time.perf_counter()
    for step in range(steps):
        if governor is not None:
            governor.update(step)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=batch, labels=batch, use_cache=False).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return (time.perf_counter() - start) / steps


def main() -> None:
    import torch

    from interp.runtime import ThreadGovernor, compute_plan, usable_cores

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4, help="steps per timed round")
    args = parser.parse_args()

    plan = compute_plan("auto")
    cores = usable_cores()
    print(f"machine: {cores} cores; chosen: {plan.dtype} ({plan.reason})")
    model, optimizer, batch = _model()
    tokens = batch.numel()
    torch.set_num_threads(cores)
    for bf16 in (False, True):  # warm up both paths
        _step_time(model, optimizer, batch, bf16, 1)
    times = {"float32": [], "bfloat16": []}
    for _ in range(args.rounds):
        for name in times:
            times[name].append(_step_time(model, optimizer, batch, name == "bfloat16", args.steps))
    median = {k: statistics.median(v) for k, v in times.items()}
    for name, seconds in median.items():
        print(
            f"{name:9s}: {seconds:.3f} s/step, {tokens / seconds:,.0f} tokens/s ({cores} threads)"
        )
    other = "bfloat16" if plan.dtype == "float32" else "float32"
    print(
        f"chosen ({plan.dtype}) vs {other}: {median[other] / median[plan.dtype]:.2f}x the tokens/s"
    )

    bf16 = plan.bf16
    stop = mp.Event()
    rounds = {"idle": [], "busy, fixed threads": [], "busy, governor": []}
    for _ in range(args.rounds):
        torch.set_num_threads(cores)
        rounds["idle"].append(_step_time(model, optimizer, batch, bf16, args.steps))
        stop.clear()
        spinner = mp.Process(target=_spin, args=(stop,), daemon=True)
        spinner.start()
        time.sleep(0.5)
        torch.set_num_threads(cores)
        rounds["busy, fixed threads"].append(_step_time(model, optimizer, batch, bf16, args.steps))
        governor = ThreadGovernor(cores, every_s=0.5)
        _step_time(model, optimizer, batch, bf16, 2, governor)  # let it look once
        rounds["busy, governor"].append(
            _step_time(model, optimizer, batch, bf16, args.steps, governor)
        )
        stop.set()
        spinner.join()
        time.sleep(0.5)
    idle = statistics.median(rounds["idle"])
    for name, values in rounds.items():
        seconds = statistics.median(values)
        print(f"{name:20s}: {seconds:.3f} s/step, {seconds / idle:.2f}x idle")
    torch.set_num_threads(cores)


if __name__ == "__main__":
    main()
