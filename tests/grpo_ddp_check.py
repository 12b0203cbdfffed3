"""Two-process GRPO on CPU (torchrun, gloo), run by tests/test_grpo.py.

    python -m torch.distributed.run --nproc_per_node 2 tests/grpo_ddp_check.py MODEL OUT LOG

Every process runs `train_grpo` on a small world with a trainer that records which
(fact_id, language) rows it generated for at each step, with their advantages, and writes them to
LOG/rank<r>.json; the test checks that each process saw whole facts.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(model_dir: str, out_dir: str, log_dir: str) -> None:
    import torch

    from interp.facts import WorldConfig, build_world
    from interp.facts.schema import FactSet
    from interp.train.grpo import GRPORegime, polyfact_trainer_class, train_grpo

    torch.set_num_threads(1)  # two processes share the cores
    base = polyfact_trainer_class()
    seen: list[dict] = []

    class RecordingTrainer(base):
        def _generate_and_score_completions(self, inputs):
            output = super()._generate_and_score_completions(inputs)
            seen.append(
                {
                    "step": int(self.state.global_step),
                    "rows": [[row["fact_id"], row["language"]] for row in inputs],
                    "advantages": output["advantages"].tolist(),
                }
            )
            return output

    world, _ = build_world(WorldConfig(languages=("en", "de"), relations=("continent",)))
    facts = FactSet(world.facts[:2], world.languages)  # the facts the test model was tuned on
    config = GRPORegime.preset(
        "smoke",
        split=None,
        device="cpu",
        prompt_format="paper",
        max_steps=2,
        batch_size=2,  # facts per step: one whole fact per process
        num_generations=4,
        max_new_tokens=4,
    )
    train_grpo(model_dir, facts, out_dir, config, trainer_class=RecordingTrainer)
    rank = int(os.environ.get("RANK", "0"))
    log = Path(log_dir)
    log.mkdir(parents=True, exist_ok=True)
    (log / f"rank{rank}.json").write_text(json.dumps({"rank": rank, "batches": seen}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
