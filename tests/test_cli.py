"""The `interp` command: help is instant, facts build / show / validate work end to end."""

from __future__ import annotations

import json
import subprocess
import sys

from interp.cli import main


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys; from interp.cli import build_parser; build_parser().format_help(); "
        "heavy = [m for m in ('torch', 'transformers', 'pandas', 'babel') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_facts_build_show_validate(tmp_path, capsys):
    out = tmp_path / "world"
    args = [
        "facts",
        "build",
        "--out",
        str(out),
        "--languages",
        "en",
        "ja",
        "--relations",
        "currency",
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert f"{manifest['n_facts']} facts x 2 languages" in text
    assert (out / "test" / "ja.jsonl").is_file()
    # same settings again: reused, not rebuilt; other settings: refused without --overwrite
    assert main(args) == 0
    assert "reusing" in capsys.readouterr().out
    assert main([*args[:-1], "continent"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["facts", "show", str(out), "--split", "test"]) == 0
    shown = capsys.readouterr().out
    assert "currency" in shown and "example fact" in shown
    assert main(["facts", "validate", str(out)]) == 0
    assert "nothing skipped" in capsys.readouterr().out


def test_validate_reports_bad_file_and_skip_counts(tmp_path, capsys):
    rows = [
        {
            "fact_id": "Q1|P38|Q2",
            "language": "en",
            "question": "q",
            "options": {"A": "a", "B": "b", "C": "c", "D": "d"},
            "answer_index": 0,
        },
        {
            "fact_id": "Q3|P38|Q4",
            "language": "en",
            "question": "q",
            "options": {"A": "a", "B": "b", "C": "c", "D": "d"},
            "answer_index": 4,
        },
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["facts", "validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "line 2" in err and "answer_index" in err and "Fix" in err
    assert main(["facts", "validate", str(path), "--skip-invalid"]) == 0
    out = capsys.readouterr().out
    assert "1 valid facts" in out and "answer_index out of range" in out
