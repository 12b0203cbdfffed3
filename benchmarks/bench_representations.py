"""Cost of cross-lingual alignment and of the logit lens relative to the forward passes they need.

Every round times each route once, in an order that rotates between rounds, after `--warmup`
untimed rounds; a route's ratio is the median over rounds of its time divided by its
baseline's time in the same round. All routes run the same model on the same texts: the test
split's facts in `--languages` (English first), `--batch` texts per forward pass.

- forward statements: `model(input_ids, attention_mask)` with logits over every fact's
  statement in every language, batched by length (the plain forward pass alignment needs);
- decoder statements: the same through `model.model` (no LM head), for reference;
- alignment: `measure_alignment` on the statements (vectors at every layer, mean over tokens,
  then retrieval and CKA for every language and layer with `--n-boot` bootstrap resamples);
  its two parts are timed too: `fact_vectors` alone and the statistics alone (`align`);
- forward questions: the plain forward pass over every question prompt;
- lens: `logit_lens` on the question prompts (every layer decoded through the final norm and
  the LM head at the last token, probabilities and ranks, `--n-boot` resamples).

Target: alignment / forward statements and lens / forward questions at most 2.

Models: `--model PATH` (default: the organism at checkpoints/default/base, with its facts at
runs/default/facts), or `--model 32m`: a random qwen2 of 512 hidden x 6 layers with the
organism's tokenizer and facts (a shape where the forward pass, not Python, dominates).

    python benchmarks/bench_representations.py
    python benchmarks/bench_representations.py --model 32m --rounds 5 --n-boot 1000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
ORGANISM = ROOT / "checkpoints" / "default" / "base"
FACTS = ROOT / "runs" / "default" / "facts"
SHAPE_32M = dict(hidden_size=512, num_layers=6, intermediate_size=2048, num_heads=8, num_kv_heads=8)


def load(args):
    """(model, tokenizer, facts, description)."""
    import torch
    from transformers import AutoModelForCausalLM

    from interp.facts.loading import load_facts
    from interp.models.loading import load_model, load_tokenizer
    from interp.models.tiny import tiny_config

    facts = load_facts(args.facts).split("test")
    if args.facts_limit:
        facts.facts = facts.facts[: args.facts_limit]
    if args.model == "32m":
        tokenizer = load_tokenizer(ORGANISM)
        config = tiny_config("qwen2", len(tokenizer), **SHAPE_32M)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
        return model, tokenizer, facts, "random qwen2 512 x 6 layers (32m shape)"
    model, tokenizer = load_model(args.model, device="cpu")
    return model.eval(), tokenizer, facts, f"trained {args.model}"


def plain_forward(model, tokenizer, texts, batch_size, *, head=True):
    """The forward pass a user would run over `texts`: length-sorted batches, right padding."""
    import torch

    encoded = tokenizer(list(texts), add_special_tokens=True)["input_ids"]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    pad = tokenizer.pad_token_id or 0
    run = model if head else model.model
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = [encoded[i] for i in order[start : start + batch_size]]
            width = max(map(len, rows))
            ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
            mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
            out = run(input_ids=ids, attention_mask=mask, use_cache=False)
            _ = out.logits if head else out.last_hidden_state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(ORGANISM), help="a checkpoint folder, or 32m")
    parser.add_argument("--facts", default=str(FACTS))
    parser.add_argument("--facts-limit", type=int, default=0, help="first N test facts (0: all)")
    parser.add_argument("--languages", nargs="+", default=["en", "de", "ja", "sw"])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (2-core machine)")
    args = parser.parse_args()

    import torch

    from interp.representations import align, fact_texts, fact_vectors, logit_lens
    from interp.representations import measure_alignment as measure

    torch.set_num_threads(args.threads)
    model, tokenizer, facts, what = load(args)
    languages = args.languages
    statements = [t for c in languages for t in fact_texts(facts, c, "statement")]
    questions = [t for c in languages for t in fact_texts(facts, c, "question")]
    vectors = fact_vectors(model, tokenizer, facts, languages, batch_size=args.batch)
    b, n = args.batch, args.n_boot

    routes = {
        "forward statements": lambda: plain_forward(model, tokenizer, statements, b),
        "decoder statements": lambda: plain_forward(model, tokenizer, statements, b, head=False),
        "alignment": lambda: measure(model, tokenizer, facts, languages, batch_size=b, n_boot=n),
        "  vectors only": lambda: fact_vectors(model, tokenizer, facts, languages, batch_size=b),
        "  statistics only": lambda: align(vectors, n_boot=n),
        "forward questions": lambda: plain_forward(model, tokenizer, questions, b),
        "lens": lambda: logit_lens(model, tokenizer, facts, languages, batch_size=b, n_boot=n),
    }
    baseline = {
        "forward statements": "forward statements",
        "decoder statements": "forward statements",
        "alignment": "forward statements",
        "  vectors only": "forward statements",
        "  statistics only": "forward statements",
        "forward questions": "forward questions",
        "lens": "forward questions",
    }
    names = list(routes)
    times: dict[str, list[float]] = {name: [] for name in names}
    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{what}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params, "
        f"{len(facts)} facts x {len(languages)} languages ({', '.join(languages)}), batch {b}, "
        f"n_boot {n}, torch {torch.__version__}, {args.threads} thread(s), load {load_avg:.1f}"
    )
    for round_index in range(args.warmup + args.rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            routes[name]()
            if round_index >= args.warmup:
                times[name].append(time.perf_counter() - start)
    print(f"median of {args.rounds} rounds after {args.warmup} warm-up; ratio to the baseline")
    print(f"  {'route':<22}{'median s':>10}{'ratio':>8}  baseline")
    for name in names:
        base = baseline[name]
        ratio = statistics.median(t / u for t, u in zip(times[name], times[base], strict=True))
        print(f"  {name:<22}{statistics.median(times[name]):>10.4f}{ratio:>8.2f}  {base}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
