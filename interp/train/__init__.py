"""Training: the model organism, the three regimes (CPT, SFT, GRPO on TRL) and the reward.

    from interp.train import train_organism, train_cpt, train_sft, train_grpo, GRPORegime
    train_grpo("checkpoints/default/base", facts, "checkpoints/default/grpo", GRPORegime.preset("default"))

`interp.train.rewards` holds the paper's joint reward, its shared advantage, the agreement
variant and TRL-compatible reward functions. Names load on first use.
"""

from __future__ import annotations

from interp._lazy import lazy_exports

_EXPORTS = {
    "organism": ("OrganismConfig", "train_organism", "evaluate_organism"),
    "corpus": ("MixtureConfig", "build_mixture"),
    "regimes": ("RegimeConfig", "LoraSettings", "dry_run"),
    "cpt": ("CPTRegime", "train_cpt"),
    "sft": ("SFTRegime", "train_sft"),
    "grpo": ("GRPORegime", "train_grpo", "grpo_plan", "grpo_prompt", "polyfact_trainer_class"),
    "sampler": ("FactGroupedSampler",),
    "checkpoints": ("save_checkpoint", "read_manifest"),
    "rewards": (
        "AnswerKey",
        "RewardConfig",
        "agreement_rewards",
        "classify_answer",
        "make_trl_reward",
        "rollout_reward",
        "score_rollouts",
        "standardize",
    ),
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
