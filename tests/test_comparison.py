"""`interp compare` on any two checkpoints and `interp report` redrawing it byte for byte."""

from __future__ import annotations

from dataclasses import replace

import pytest

from interp.cli import main
from interp.facts import write_polyfact
from interp.train.organism import PRESETS, train_organism

LANGS = ("en", "de", "ja", "sw")


@pytest.fixture(scope="module")
def two_organisms(world, tmp_path_factory):
    """Two smoke organisms that differ only in their seed, and the facts they read."""
    from conftest import pick_facts

    small = pick_facts(world[0], LANGS, {"train": 40, "validation": 4, "test": 16})
    root = tmp_path_factory.mktemp("compare")
    write_polyfact(small, root / "facts")
    config = PRESETS["smoke"].with_overrides(vocab_size=400, steps=20, n_boot=20, threads=1)
    for seed in (0, 1):
        train_organism(small, root / f"seed{seed}", replace(config, seed=seed), progress=False)
    return root


ANALYSIS = ["--seq-len", "32", "--token-budget", "1024", "--n-boot", "20", "--n-perm", "0"]
ANALYSIS += ["--lahis-samples", "2", "--eval-n-boot", "50", "--quiet"]


def _files(folder) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "inputs" not in p.relative_to(folder).parts
    }


def test_compare_two_checkpoints_and_redraw_them_byte_for_byte(two_organisms, capsys):
    root = two_organisms
    out = root / "cmp"
    argv = ["compare", f"a={root / 'seed0'}", f"b={root / 'seed1'}", "--out", str(out)]
    argv += ["--facts", str(root / "facts"), *ANALYSIS]
    assert main(argv) == 0
    said = capsys.readouterr().out
    assert f"in {out}/" in said
    drawn = _files(out)
    for name in ("index.md", "summary.csv", "tables/regime_effects.csv", "08_recall.png"):
        assert name in drawn, name
    for name in ("01_neuron_counts", "06_head_overlap", "09_specialization_vs_consistency"):
        assert f"{name}.png" in drawn and f"{name}.pdf" in drawn, name
    index = drawn["index.md"].decode()
    assert "baseline a" in index and "b vs a" in index
    summary = drawn["summary.csv"].decode().splitlines()
    assert [line.split(",")[0] for line in summary[1:]] == ["a", "b"]

    # redrawn from what the comparison saved: the same bytes, nothing recomputed
    for path in out.iterdir():
        if path.name not in ("inputs", "comparison.json"):
            if path.is_dir():
                import shutil

                shutil.rmtree(path)
            else:
                path.unlink()
    assert main(["report", str(out)]) == 0
    assert _files(out) == drawn


@pytest.mark.parametrize(
    ("entries", "extra", "words"),
    [
        (["a=X", "a=Y"], [], ["'a' is given twice"]),
        (["justapath"], [], ["NAME=PATH_OR_HUB_ID"]),
        (["a/b=X"], [], ["the name 'a/b'"]),
        (["a={seed0}", "b={seed1}"], ["--baseline", "c"], ["--baseline 'c'", "'a', 'b'"]),
        (["a={seed0}", "b=./no-such-model"], [], ["no-such-model", "no such checkpoint folder"]),
        (["a={seed0}", "b=paper:olmo-grpo"], [], ["paper:olmo-grpo", "interp pipeline"]),
    ],
)
def test_compare_bad_input(two_organisms, capsys, entries, extra, words, tmp_path):
    root = two_organisms
    entries = [e.format(seed0=root / "seed0", seed1=root / "seed1") for e in entries]
    out = tmp_path / "cmp"
    code = main(["compare", *entries, *extra, "--out", str(out), "--facts", str(root / "facts")])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("interp: error:") and "Traceback" not in err
    assert "Fix:" in err
    for word in words:
        assert word in err, (word, err)
    assert not out.exists()  # nothing evaluated or written before the error


def test_compare_refuses_different_models_before_any_work(two_organisms, capsys, tmp_path):
    import json
    import shutil

    root = two_organisms
    other = tmp_path / "deeper"
    shutil.copytree(root / "seed1", other, ignore=shutil.ignore_patterns("eval", "analysis"))
    config = json.loads((other / "config.json").read_text())
    config["num_hidden_layers"] += 1
    (other / "config.json").write_text(json.dumps(config))
    out = tmp_path / "cmp"
    argv = ["compare", f"a={root / 'seed0'}", f"b={other}", "--out", str(out)]
    assert main([*argv, "--facts", str(root / "facts")]) == 1
    err = capsys.readouterr().err
    assert "a and b are different models (num_hidden_layers 2 vs 3)" in err and "Fix:" in err
    assert not out.exists() and not (other / "eval").exists()


def test_report_of_a_folder_without_a_comparison(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "no comparison.json" in err and "interp compare" in err
