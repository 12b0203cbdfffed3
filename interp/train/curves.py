"""Learning curves: what each regime optimised, and whether it got better and levelled off.

Every trainer records, per logged step, its loss (and GRPO its mean reward), and a probe
scores a fixed sample of the regime's own training items with the evaluation protocol every
`probe_every` steps (its accuracy on what it trains on). The manifest keeps the curve:

    curve = LearningCurve.from_manifest(read_manifest(checkpoint))
    curve.frame()          # step, loss, reward, train_accuracy (NaN where not measured)
    curve.verdict()        # the objective's first and last tenth, improved?, levelled off?

Criteria (`verdict`): the objective is the regime's own (GRPO: mean reward, higher is
better; CPT and SFT: the training loss, lower is better). It "improved" when the mean of its
last tenth of logged steps beats the mean of its first tenth by at least `margin` of the
first tenth's magnitude (at least 0.05 absolute for rewards); it "levelled off" when over the
last fifth of the steps (least-squares slope) it moved less than half as fast as over the
whole run on average. A curve that did not improve, or is still falling steeply, is named in
the report's warnings with the fix (more steps, another learning rate).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from interp.train.checkpoints import Manifest

CURVE_KEY = "learning_curve"


@dataclass
class LearningCurve:
    """One regime's curve: rows of step, loss, reward, train_accuracy (None where absent)."""

    regime: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_manifest(cls, manifest: Manifest | Mapping[str, Any]) -> LearningCurve | None:
        from interp.train.checkpoints import Manifest

        if not isinstance(manifest, Manifest):
            manifest = Manifest.from_dict(dict(manifest))
        if not manifest.learning_curve:
            return None
        return cls(manifest.kind, manifest.learning_curve)

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        columns = ["step", "loss", "reward", "train_accuracy"]
        table = pd.DataFrame(self.rows, columns=columns)
        return table.astype({c: float for c in columns[1:]}).sort_values("step")

    def objective(self) -> tuple[str, list[tuple[int, float]], bool]:
        """(name, [(step, value)], higher_is_better) of what the regime optimised."""
        frame = self.frame()
        name, higher = ("reward", True) if frame["reward"].notna().any() else ("loss", False)
        rows = frame[frame[name].notna()]
        return name, list(zip(rows["step"].astype(int), rows[name], strict=True)), higher

    def verdict(self, margin: float = 0.05) -> dict[str, Any]:
        name, points, higher = self.objective()
        return {"objective": name, **curve_verdict([v for _, v in points], higher, margin)}


def curve_verdict(values: Sequence[float], higher_is_better: bool, margin: float = 0.05):
    """First and last tenth means, whether the curve improved and whether it levelled off."""
    values = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if len(values) < 4:
        return {
            "first": math.nan,
            "last": math.nan,
            "improved": False,
            "levelled": False,
            "points": len(values),
        }
    tenth = max(1, len(values) // 10)
    first = sum(values[:tenth]) / tenth
    last = sum(values[-tenth:]) / tenth
    sign = 1.0 if higher_is_better else -1.0
    gain = sign * (last - first)
    needed = max(margin * abs(first), 0.05 if higher_is_better else 0.0)
    # levelled: over the last fifth (a least-squares slope) it moves less than half as fast
    # as over the whole run on average; a straight line never levels off
    fifth = values[-max(3, len(values) // 5) :]
    xs = range(len(fifth))
    x_mean, y_mean = (len(fifth) - 1) / 2, sum(fifth) / len(fifth)
    late = sign * sum((x - x_mean) * (y - y_mean) for x, y in zip(xs, fifth, strict=True))
    late /= sum((x - x_mean) ** 2 for x in xs)
    average = gain / (len(values) - 1)
    return {
        "first": first,
        "last": last,
        "improved": gain > needed,
        "levelled": gain > 0 and late < 0.5 * average,
        "points": len(values),
    }


def curve_rows(log_history: Sequence[Mapping[str, Any]], probe: Sequence[Mapping[str, Any]]):
    """Merge a trainer's log history (loss, reward) and probe accuracies by step."""
    by_step: dict[int, dict[str, Any]] = {}
    for entry in log_history:
        if "step" not in entry or not ({"loss", "reward"} & set(entry)):
            continue
        row = by_step.setdefault(int(entry["step"]), {"step": int(entry["step"])})
        for key in ("loss", "reward"):
            if key in entry:
                row[key] = float(entry[key])
    for entry in probe:
        row = by_step.setdefault(int(entry["step"]), {"step": int(entry["step"])})
        row["train_accuracy"] = float(entry["train_accuracy"])
    return [by_step[s] for s in sorted(by_step)]


def probe_items(facts: Any, languages: Sequence[str], n_facts: int, seed: int):
    """A fixed, seeded sample of `n_facts` facts' items in `languages`, as a scoring frame."""
    import random

    chosen = sorted(facts, key=lambda f: str(f.fact_id))
    if n_facts < len(chosen):
        chosen = random.Random(f"probe:{seed}").sample(chosen, n_facts)
    from interp.facts.schema import FactSet

    return FactSet(chosen, tuple(languages)).to_frame(tuple(languages))


def accuracy_probe(items: pd.DataFrame, tokenizer: Any, points: int, *, batch_size: int = 64):
    """A TrainerCallback scoring `items` before training and at `points` evenly spaced steps.

    Every process runs it (so sharded models gather their weights together); `probe.records`
    holds {"step", "train_accuracy"}.
    """
    from transformers import TrainerCallback

    from interp.evaluate.scoring import score_options

    class AccuracyProbe(TrainerCallback):
        records: list[dict[str, float]] = []
        every = 1

        def _measure(self, state, model) -> None:
            scores = score_options(model, tokenizer, items, batch_size=batch_size, progress=False)
            right = [
                max(range(len(s)), key=s.__getitem__) == a
                for s, a in zip(scores["scores"], scores["answer_index"], strict=True)
            ]
            self.records.append(
                {"step": int(state.global_step), "train_accuracy": sum(right) / len(right)}
            )

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            self.records = []
            self.every = max(1, state.max_steps // max(1, points))
            if state.global_step == 0:
                self._measure(state, model)

        def on_step_end(self, args, state, control, model=None, **kwargs):
            last = state.global_step >= state.max_steps
            if state.global_step % self.every == 0 or last:
                self._measure(state, model)

    return AccuracyProbe()


def governor_callback(governor: Any):
    """A TrainerCallback that lets `interp.runtime.ThreadGovernor` adjust threads each step."""
    from transformers import TrainerCallback

    class Governor(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            governor.update(state.global_step)

    return Governor()
