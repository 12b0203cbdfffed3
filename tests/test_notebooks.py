"""The notebooks under notebooks/ run end to end (quick sizes) and are stored without outputs."""

from __future__ import annotations

import base64
import json
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ("01_explore_checkpoint", "02_compare_checkpoints", "03_paper_7b_results")
TIMEOUT_S = 120  # per cell; the three notebooks take about 40 s together in quick mode
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _read(name: str):
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


def _kernel_manager(tmp_path: Path):
    """A kernel manager that starts ipykernel with this interpreter.

    The installed `python3` kernel spec may say plain "python", which outside an activated
    venv is another interpreter without interp; a spec written here names sys.executable.
    """
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec_dir = tmp_path / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (interp tests)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    specs = KernelSpecManager(kernel_dirs=[str(spec_dir.parent)])
    return KernelManager(kernel_name="python3", kernel_spec_manager=specs)


def _execute(name: str, tmp_path: Path, env: dict[str, str]):
    """Run a notebook in a fresh kernel (working directory tmp_path); return it with outputs."""
    from nbclient import NotebookClient

    nb = _read(name)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    client = NotebookClient(
        nb,
        timeout=TIMEOUT_S,
        kernel_name="python3",
        km=_kernel_manager(tmp_path),
        resources={"metadata": {"path": str(workdir)}},
    )
    kernel_env = {
        **os.environ,
        "INTERP_NB_QUICK": "1",
        # the kernel is one process among others on a small machine: one thread each avoids
        # oversubscription (measured 8x slower with the default thread count under load)
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "WANDB_MODE": "disabled",
        "HF_HUB_OFFLINE": "1",
        "TMPDIR": str(tmp_path),  # the tiny models the notebooks build land in pytest's folder
        **env,
    }
    client.execute(env=kernel_env)
    return nb


def _outputs(nb):
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]


def _pngs(nb) -> list[bytes]:
    return [
        base64.b64decode(out["data"]["image/png"])
        for out in _outputs(nb)
        if out.output_type in ("display_data", "execute_result") and "image/png" in out["data"]
    ]


def _text(nb) -> str:
    """Everything the notebook printed or displayed as text, joined."""
    parts = []
    for out in _outputs(nb):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("display_data", "execute_result"):
            parts.append(out["data"].get("text/markdown", out["data"].get("text/plain", "")))
    return "\n".join(parts)


def _check_ran(nb, min_figures: int) -> None:
    errors = [out for out in _outputs(nb) if out.output_type == "error"]
    assert not errors, errors
    pngs = _pngs(nb)
    assert len(pngs) >= min_figures, f"{len(pngs)} figures, expected at least {min_figures}"
    assert all(png.startswith(PNG_MAGIC) and len(png) > 1000 for png in pngs)


# --------------------------------------------------------------------------------------------
# stored form


@pytest.mark.parametrize("name", NAMES)
def test_stored_notebook_has_no_outputs(name):
    nb = _read(name)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, f"{name} has no code cells"
    for index, cell in enumerate(code):
        assert cell.outputs == [], f"{name}: code cell {index} was saved with outputs"
        assert cell.execution_count is None, f"{name}: code cell {index} has an execution count"
    assert nb.metadata["kernelspec"]["name"] == "python3"


PARAMETERS = {
    "01_explore_checkpoint": {"QUICK", "CHECKPOINT", "FACTS", "LANGUAGES", "TOKEN_BUDGET"},
    "02_compare_checkpoints": {"QUICK", "CHECKPOINTS", "FACTS", "LANGUAGES", "BASELINE"},
    "03_paper_7b_results": {"REFERENCE", "REASSIGN", "DARK"},
}


@pytest.mark.parametrize("name", NAMES)
def test_first_code_cell_holds_the_parameters(name):
    first = next(cell for cell in _read(name).cells if cell.cell_type == "code")
    assert "parameters" in first.metadata.get("tags", [])  # papermill's convention
    assert "os.environ" in first.source  # environment overrides are read there
    assigned = set(re.findall(r"^([A-Z][A-Z_0-9]*) = ", first.source, flags=re.M))
    assert PARAMETERS[name] <= assigned, PARAMETERS[name] - assigned


def test_kernel_runs_this_interpreter(tmp_path):
    """The kernel the notebooks get is this venv's Python, whatever the installed spec says."""
    import ipykernel  # noqa: F401  (the kernel must be importable here)
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell("import sys, interp\nprint(sys.executable)")])
    client = NotebookClient(nb, timeout=60, kernel_name="python3", km=_kernel_manager(tmp_path))
    client.execute()
    assert nb.cells[0].outputs[0].text.strip() == sys.executable


# --------------------------------------------------------------------------------------------
# execution (quick sizes, tiny random models)


def test_explore_checkpoint_runs(tmp_path):
    from interp.facts import WorldConfig, build_world

    nb = _execute("01_explore_checkpoint", tmp_path, {"INTERP_NB_LANGUAGES": "en,de,ja"})
    # recall, counts, layers, head layers, head overlap, two dark diagonals
    _check_ran(nb, min_figures=7)
    facts, _ = build_world(
        WorldConfig(languages=("en", "de", "ja"), relations=("capital", "currency"))
    )
    expected = f"{len(facts.facts)} facts x 3 languages = {3 * len(facts.facts)} items"
    assert expected in _text(nb)


def test_compare_checkpoints_runs(tmp_path):
    nb = _execute("02_compare_checkpoints", tmp_path, {})
    # recall, counts (two scorers), layers, cumulative, reassignment, head overlap
    _check_ran(nb, min_figures=7)
    text = _text(nb)
    assert "base -> seed1" in text  # two tiny models with different seeds, base first


def test_paper_results_runs(tmp_path, reference_dir):
    results = reference_dir / "polyfact-results"
    nb = _execute("03_paper_7b_results", tmp_path, {"INTERP_NB_REFERENCE": str(results)})
    families = {p.name.split("-")[0] for p in (results / "lape").iterdir() if p.is_dir()}
    # three per family, reassignment, two per LAHIS folder, one per dark-diagonal file
    lahis = [d for d in ("lahis", "lahis-recomputed") if any((results / d).glob("*"))]
    dark = list((results / "dark-diagonal").glob("*.json"))
    _check_ran(nb, min_figures=3 * len(families) + 1 + 2 * len(lahis) + min(len(dark), 1))

    # the kept count of the reassignment, recomputed from the published JSON directly
    def neurons(name):
        data = json.loads((results / "lape" / name / "lape_results.json").read_text())
        return {
            (int(layer), n, lang)
            for layer, by in data.items()
            for lang, ns in by.items()
            for n in ns
        }

    base, grpo = neurons("olmo-base"), neurons("olmo-grpo")
    kept = len(base & grpo)
    assert f"Reading: {kept} of {len(base)} olmo-base neurons" in _text(nb)
