"""One shared style for every figure: palettes, markers, language labels, saving.

- Checkpoint colours come from the Okabe-Ito palette (safe for the common colour-vision
  deficiencies); a checkpoint's training stage, read from its name (base, sft, grpo, cpt...),
  picks its colour, so the same stage has the same colour in every figure.
- Languages: one colour (Paul Tol's muted palette, extended) and one marker each, in the
  paper's order; low-resource languages (id bn sw) carry a dagger in labels ("bn†").
- Heatmaps: "YlGnBu" (ColorBrewer, colour-vision safe; white = none) for counts and shares, "RdBu_r" centred on zero for changes.
- `save_figure(fig, "figures/run/name")` writes name.png and name.pdf, each atomically.

Nothing here touches matplotlib's global state: figures are `matplotlib.figure.Figure`
objects built directly, and sizes and fonts are passed to each artist.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from interp import languages as langreg

OKABE_ITO = (
    "#000000",  # black
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow (last: weak on white)
)
# stage keyword (checked in this order) -> preferred colour
_STAGE_COLORS = (
    ("cpt-grpo", "#CC79A7"),
    ("attmlp", "#E69F00"),
    ("grpo", "#D55E00"),
    ("sft", "#0072B2"),
    ("cpt", "#009E73"),
    ("base", "#000000"),
)
# Tol muted (9) + three Okabe-Ito hues: 12 colours for the paper's 12 trained languages
LANGUAGE_PALETTE = (
    "#332288",
    "#88CCEE",
    "#44AA99",
    "#117733",
    "#999933",
    "#DDCC77",
    "#CC6677",
    "#882255",
    "#AA4499",
    "#0072B2",
    "#E69F00",
    "#555555",
)
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">", "p", "h", "H", "d", "8")
SEQUENTIAL = "YlGnBu"
DIVERGING = "RdBu_r"
LOW_RESOURCE_MARK = "\u2020"  # dagger
MISSING_COLOR = "#DDDDDD"

FONT = 8  # points: small figures stay legible at print size
TITLE = 9


def language_color(code: str) -> str:
    """A fixed colour per language (registry order; unknown codes get grey)."""
    if code in langreg.ALL:
        return LANGUAGE_PALETTE[langreg.ALL.index(code) % len(LANGUAGE_PALETTE)]
    return "#777777"


def language_marker(code: str) -> str:
    """A fixed marker per language; trained and unseen languages use different markers."""
    if code in langreg.TRAINED:
        return MARKERS[langreg.TRAINED.index(code) % len(MARKERS)]
    if code in langreg.UNSEEN:
        return MARKERS[(langreg.UNSEEN.index(code) + 3) % len(MARKERS)]
    return "o"


def language_label(code: str) -> str:
    """The code, with a dagger for low-resource languages ("bn\u2020")."""
    return f"{code}{LOW_RESOURCE_MARK}" if code in langreg.LOW_RESOURCE else code


def low_resource_note(codes: Iterable[str]) -> str | None:
    """The legend note for the dagger, if any low-resource language is shown."""
    low = [c for c in codes if c in langreg.LOW_RESOURCE]
    return f"{LOW_RESOURCE_MARK} low-resource ({' '.join(low)})" if low else None


def checkpoint_colors(names: Sequence[str]) -> dict[str, str]:
    """{checkpoint: colour}: by training stage when the name says it, else the next free one."""
    colors: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        lowered = name.lower()
        preferred = next((c for key, c in _STAGE_COLORS if key in lowered), None)
        if preferred is not None and preferred not in used:
            colors[name] = preferred
            used.add(preferred)
    for name in names:
        if name not in colors:
            free = [c for c in OKABE_ITO if c not in used] or list(OKABE_ITO)
            colors[name] = free[0]
            used.add(free[0])
    return colors


def checkpoint_hatches(names: Sequence[str]) -> dict[str, str]:
    """A hatch per checkpoint (bars stay distinguishable in grey print)."""
    hatches = ("", "//", "..", "\\\\", "xx", "--", "oo", "++")
    return {name: hatches[i % len(hatches)] for i, name in enumerate(names)}


# ---------------------------------------------------------------------------------------------
# figure helpers


def new_figure(width: float, height: float):
    """A constrained-layout Figure (no pyplot, no global state)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def style_axes(ax, *, grid: str | None = "y") -> None:
    ax.tick_params(labelsize=FONT)
    ax.xaxis.label.set_size(FONT + 0.5)
    ax.yaxis.label.set_size(FONT + 0.5)
    ax.title.set_size(TITLE)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if grid:
        ax.grid(axis=grid, color="#E5E5E5", linewidth=0.6)
        ax.set_axisbelow(True)


def language_ticks(ax, codes: Sequence[str], axis: str = "x", rotation: float = 0) -> None:
    """Language tick labels (dagger for low-resource; unseen languages in italics)."""
    positions = np.arange(len(codes))
    labels = [language_label(c) for c in codes]
    if axis == "x":
        ax.set_xticks(positions, labels, rotation=rotation, fontsize=FONT)
        ticks = ax.get_xticklabels()
    else:
        ax.set_yticks(positions, labels, fontsize=FONT)
        ticks = ax.get_yticklabels()
    for tick, code in zip(ticks, codes, strict=True):
        if code in langreg.UNSEEN:
            tick.set_fontstyle("italic")


def side_legend(target, ax, *, title: str = "checkpoint", fontsize: float | None = None):
    """The legend of `ax`'s lines or bars, outside `target` (a figure or subfigure) at the
    upper right: one per figure, titled."""
    return target.legend(
        *ax.get_legend_handles_labels(),
        loc="outside right upper",
        fontsize=FONT if fontsize is None else fontsize,
        title=title,
        title_fontsize=FONT,
        frameon=False,
    )


def add_note(fig, text: str | None) -> None:
    """A small footnote at the bottom right of the figure."""
    if text:
        # supxlabel takes part in the constrained layout, so the note never overlaps an axis
        fig.supxlabel(text, x=0.995, ha="right", fontsize=FONT - 1, color="#444444")


def symmetric_limit(values: Any) -> float:
    """max |value| (finite), at least a tiny positive number, for a zero-centred scale."""
    values = np.asarray(values, dtype=float)
    finite = np.abs(values[np.isfinite(values)])
    return float(finite.max()) if finite.size and finite.max() > 0 else 1e-9


def heatmap(
    ax,
    values: np.ndarray,
    *,
    cmap: str = SEQUENTIAL,
    norm=None,
    annotate: str | None = None,
    mask: np.ndarray | None = None,
    fontsize: float = FONT - 1.5,
):
    """imshow of a 2-D array with optional annotations; masked cells drawn in light grey."""
    import matplotlib as mpl

    values = np.asarray(values, dtype=float)
    shown = np.ma.masked_invalid(values)
    if mask is not None:
        shown = np.ma.masked_where(mask | np.ma.getmaskarray(shown), shown)
    colormap = mpl.colormaps[cmap].with_extremes(bad=MISSING_COLOR)
    image = ax.imshow(shown, cmap=colormap, norm=norm, aspect="auto", interpolation="nearest")
    if annotate:
        rgba = image.to_rgba(shown)
        for (i, j), value in np.ndenumerate(values):
            if not np.isfinite(value) or (mask is not None and mask[i, j]):
                continue
            r, g, b, _ = rgba[i, j]
            dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
            ax.text(
                j,
                i,
                format(value, annotate),
                ha="center",
                va="center",
                fontsize=fontsize,
                color="white" if dark else "black",
            )
    return image


def colorbar(fig, image, ax, label: str):
    bar = fig.colorbar(image, ax=ax, shrink=0.85, pad=0.02)
    bar.ax.tick_params(labelsize=FONT - 1)
    bar.set_label(label, fontsize=FONT)
    return bar


# ---------------------------------------------------------------------------------------------
# saving


def save_figure(
    fig, path_stem: str | Path, *, dpi: int = 200, formats: Sequence[str] = ("png", "pdf")
):
    """Write `<path_stem>.png` and `<path_stem>.pdf` (each to a temporary file, then renamed).

    A suffix .png or .pdf on `path_stem` is dropped. Returns the written paths.
    """
    from interp.io import atomic_write_bytes

    stem = Path(path_stem)
    if stem.suffix.lower() in (".png", ".pdf"):
        stem = stem.with_suffix("")
    written = []
    for fmt in formats:
        buffer = io.BytesIO()
        # constrained layout already fits everything inside the figure: no "tight" second pass
        fig.savefig(buffer, format=fmt, dpi=dpi, metadata=_metadata(fmt))
        written.append(atomic_write_bytes(stem.with_name(f"{stem.name}.{fmt}"), buffer.getvalue()))
    return written


def _metadata(fmt: str) -> dict[str, Any] | None:
    # no creation date in the PDF: the same tables give byte-identical files
    return {"CreationDate": None} if fmt == "pdf" else None
