"""Training regimes (CPT, SFT, GRPO) and the GRPO reward.

`interp.train.rewards` holds the paper's joint reward, its shared advantage, the agreement
variant and TRL-compatible reward functions. Names load on first use.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
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
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
