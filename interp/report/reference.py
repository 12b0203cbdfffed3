"""The paper's published 7B results (LAPE neuron sets, LAHIS heads) through the same figures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from interp.report.ablation import _fig_dark
from interp.report.common import (
    Report,
    _base_first,
    _slug,
    _Writer,
)
from interp.report.heads import _fig_head_layers, _fig_head_overlap
from interp.report.neurons import (
    _fig_counts,
    _fig_cumulative,
    _fig_layers,
    _fig_reassignment,
)


def write_reference_report(
    out_dir: str | Path,
    root: str | Path | None = None,
    *,
    formats: Sequence[str] = ("png", "pdf"),
    dpi: int = 150,
) -> Report:
    """The PolyFact release's 7B results (`interp.specialization.reference`) through the same
    figures: LAPE counts, layers and depth per family (olmo-*, qwen-*), neuron reassignment
    olmo-base -> olmo-grpo, head layers and overlaps (the paper's olmo-base / olmo-sft and the
    recomputed olmo-base / olmo-sft-10k / olmo-grpo) and the dark diagonal of olmo-base."""
    from interp.specialization import reference
    from interp.specialization.heads import top_heads

    root = reference.find_reference_dir(root)
    w = _Writer(out_dir, formats, dpi)
    lape = reference.load_all_lape(root)
    families: dict[str, dict[str, Any]] = {}
    for name, selection in lape.items():
        families.setdefault(name.split("-")[0], {})[name] = selection
    for family, sels in families.items():
        sels = _base_first(sels, f"{family}-base")
        base = next(iter(sels))
        label = f"{family}, LAPE (published)"
        _fig_counts(w, f"01_neuron_counts_{family}", sels, base, label)
        _fig_layers(w, f"02_layer_heatmap_{family}", sels, base, label)
        _fig_cumulative(w, f"03_cumulative_{family}", sels, base, label)
    for base, tuned in (("olmo-base", "olmo-grpo"),):
        if base in lape and tuned in lape:
            _fig_reassignment(
                w, f"04_reassignment_{base}_to_{tuned}", lape[base], lape[tuned], (base, tuned)
            )
        else:
            w.skip(f"04_reassignment_{base}_to_{tuned}", f"{base} or {tuned} not under lape/")

    for recomputed, tag, what in ((False, "paper", "paper"), (True, "recomputed", "recomputed")):
        names = reference.lahis_checkpoints(root, recomputed=recomputed)
        if not names:
            w.skip(
                f"05_head_layers_{tag}", f"no checkpoints under lahis{'-recomputed' * recomputed}/"
            )
            continue
        heads = _base_first(
            {n: top_heads(reference.load_lahis(n, root, recomputed=recomputed)) for n in names},
            "olmo-base",
        )
        base = "olmo-base" if "olmo-base" in heads else None
        _fig_head_layers(
            w,
            f"05_head_layers_{tag}",
            heads,
            f"Where each language's top heads sit (LAHIS, {what})",
        )
        _fig_head_overlap(
            w, f"06_head_overlap_{tag}", heads, base, f"Top-head overlap (LAHIS, {what})"
        )

    dark = sorted(p.stem for p in (root / "dark-diagonal").glob("*.json"))
    if not dark:
        w.skip("07_dark_diagonal", "no files under dark-diagonal/")
    for name in dark:
        table = reference.load_dark_diagonal(name, root)
        _fig_dark(
            w,
            f"07_dark_diagonal_{_slug(name)}",
            table,
            f"{name}: masking language X's top-20 heads",
            value="delta_pct",
        )
    preamble = [
        f"The PolyFact release's published 7B results ({root}), drawn with interp's figures.",
        "LAPE counts are a fixed budget (1% of neurons), so totals match across checkpoints of "
        "a family; only the split over languages and layers can change. No intervals were "
        "published. The sets give each neuron one language (the argmax), so script-level "
        "neurons cannot show in them (figure 12 needs a scorer that can assign several "
        "languages, such as null-fdr).",
    ]
    return w.index("PolyFact 7B reference results", preamble)
