"""Bad pipeline configs, bad CLI arguments and interruptions: a clear message, the right exit
code, nothing written.

Every case runs the real command line (`interp.cli.main`) in an empty folder with `--dry-run`
(which must catch everything the real run would) and checks: the exit code; stderr is one
`interp: error: ...` message naming the input (the file and the field) and a fix, without a
traceback; and the folder holds nothing but the input afterwards.
"""

from __future__ import annotations

import json

import pytest

from interp.cli import main


def _json(values):
    return json.dumps(values)


# name -> (config file name, its text, words the message must contain)
CONFIG_CASES = {
    "int as string": ("c.json", _json({"organism": {"steps": "100"}}), ["organism.steps", "100 without quotes"]),
    "int as fraction": ("c.json", _json({"organism": {"steps": 100.5}}), ["organism.steps", "integer"]),
    "int as float": ("c.json", _json({"organism": {"steps": 100.0}}), ["organism.steps", "write 100"]),
    "int as bool": ("c.json", _json({"analysis": {"batch_size": True}}), ["analysis.batch_size", "integer"]),
    "bool as string": ("c.json", _json({"analysis": {"ablation": "yes"}}), ["analysis.ablation", "true/false"]),
    "bool as int": ("c.toml", "[analysis]\nablation = 1\n", ["analysis.ablation", "true/false"]),
    "float as string": ("c.json", _json({"sft": {"learning_rate": "1e-3"}}), ["sft.learning_rate", "without quotes"]),
    "list as string": ("c.json", _json({"world": {"languages": "en"}}), ["world.languages", "list"]),
    "negative max_steps": ("c.json", _json({"grpo": {"max_steps": -5}}), ["max_steps=-5", ">= 1"]),
    "zero max_steps": ("c.toml", "[cpt]\nmax_steps = 0\n", ["max_steps=0"]),
    "zero learning rate": ("c.json", _json({"sft": {"learning_rate": 0}}), ["learning_rate=0"]),
    "negative organism steps": ("c.json", _json({"organism": {"steps": -3}}), ["steps=-3"]),
    "zero seq_len": ("c.json", _json({"analysis": {"seq_len": 0}}), ["seq_len=0", ">= 2"]),
    "top_frac above one": ("c.json", _json({"analysis": {"top_frac": 2.0}}), ["top_frac=2.0", "(0, 1]"]),
    "unknown scorer": ("c.json", _json({"analysis": {"scorers": ["lape-x"]}}), ["lape-x", "lape-paper"]),
    "unknown backend": ("c.json", _json({"analysis": {"backend": "jax"}}), ["jax", "torch"]),
    "unknown evaluation split": ("c.json", _json({"evaluation": {"split": "dev"}}), ["evaluation.split", "validation"]),
    "negative n_boot": ("c.json", _json({"evaluation": {"n_boot": -1}}), ["evaluation.n_boot"]),
    "zero eval batch": ("c.json", _json({"evaluation": {"batch_size": 0}}), ["evaluation.batch_size"]),
    "parent not trained": ("c.json", _json({"regimes": ["cpt-grpo"]}), ["'cpt-grpo' starts from 'cpt'", "add 'cpt'"]),
    "unknown regime": ("c.json", _json({"regimes": ["dpo"]}), ["dpo", "cpt"]),
    "regimes as string": ("c.json", _json({"regimes": "cpt"}), ["regimes", "list"]),
    "run with a separator": ("c.json", _json({"run": "a/b"}), ["run name 'a/b'", "--run"]),
    "run is dot-dot": ("c.json", _json({"run": ".."}), ["run name '..'"]),
    "run is empty": ("c.toml", 'run = ""\n', ["run name ''"]),
    "unknown field": ("c.json", _json({"organism": {"stepz": 3}}), ["'organism.stepz'", "[organism] fields"]),
    "unknown section": ("c.json", _json({"colour": "red"}), ["'colour'", "top-level keys"]),
    "section not a table": ("c.json", _json({"organism": 5}), ["'organism' must be a table"]),
    "split fractions": ("c.json", _json({"world": {"split_fractions": [0.5, 0.5, 0.5]}}), ["split_fractions"]),
    "unknown relation": ("c.json", _json({"world": {"relations": ["spouse"]}}), ["spouse", "relation"]),
    "invalid JSON": ("c.json", '{"organism": {"steps": 3,}}', ["not valid JSON"]),
    "invalid TOML": ("c.toml", "[organism\nsteps = 3\n", ["not valid TOML"]),
    "not a table": ("c.json", "[1, 2]", ["not a table of settings"]),
}  # fmt: skip


@pytest.fixture
def empty_dir(tmp_path, monkeypatch):
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)  # the pipeline's default folders land here, if anywhere
    return folder


def _check_error(capsys, code, expected_code, words, names):
    err = capsys.readouterr().err
    assert code == expected_code, err
    assert err.startswith("interp: error:"), err
    assert "Traceback" not in err
    for word in [*words, *names]:
        assert word in err, (word, err)
    assert "Fix:" in err, err
    return err


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_bad_config_files_fail_the_dry_run(case, empty_dir, capsys):
    name, text, words = CONFIG_CASES[case]
    path = empty_dir / name
    path.write_text(text, encoding="utf-8")
    code = main(["pipeline", "--preset", "smoke", "--config", str(path), "--dry-run"])
    _check_error(capsys, code, 1, words, [name])
    assert sorted(p.name for p in empty_dir.iterdir()) == [name]  # nothing written


def test_config_file_encoding(empty_dir, capsys):
    path = empty_dir / "latin1.toml"
    path.write_bytes('run = "caf\u00e9"\n'.encode("latin-1"))
    code = main(["pipeline", "--preset", "smoke", "--config", str(path), "--dry-run"])
    _check_error(capsys, code, 1, ["not UTF-8", "byte 10"], ["latin1.toml"])
    # a UTF-8 BOM is accepted: the same settings as without it
    bom = empty_dir / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + _json({"organism": {"steps": 3}}).encode())
    from interp.config import load_config

    assert load_config("smoke", bom).organism.steps == 3


# name -> (argv, exit code, words)
CLI_CASES = {
    "missing config file": (
        ["pipeline", "--config", "nope/missing.toml", "--dry-run"],
        1,
        ["missing.toml", "no such config file"],
    ),
    "config is a folder": (["pipeline", "--config", ".", "--dry-run"], 1, ["a folder"]),
    "run with a separator": (["pipeline", "--run", "x/y", "--dry-run"], 1, ["run name 'x/y'"]),
    "run starting with a dash": (["pipeline", "--run=-x", "--dry-run"], 1, ["run name '-x'"]),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_bad_cli_arguments(case, empty_dir, capsys):
    argv, expected, words = CLI_CASES[case]
    code = main(argv)
    _check_error(capsys, code, expected, words, [])
    assert list(empty_dir.iterdir()) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["pipeline", "--preset", "huge"],
        ["frobnicate"],
        ["eval"],  # a required argument missing
        ["pipeline", "--no-such-flag"],
    ],
)
def test_usage_errors_exit_2(argv, empty_dir, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "Traceback" not in err


def _fail_with(monkeypatch, error):
    from interp import pipeline

    def run(*_args, **_kwargs):
        raise error

    monkeypatch.setattr(pipeline, "run_pipeline", run)


def test_ctrl_c_says_what_is_kept(empty_dir, capsys, monkeypatch):
    runs = empty_dir / "runs" / "smoke"
    runs.mkdir(parents=True)
    (runs / "state.json").write_text(_json({"facts": {"key": "k"}, "base": {"key": "k"}}))
    _fail_with(monkeypatch, KeyboardInterrupt())
    code = main(["pipeline", "--preset", "smoke", "--quiet"])
    err = capsys.readouterr().err
    assert code == 130
    assert "interp: interrupted" in err and "Traceback" not in err
    assert "Finished stages kept: facts, base" in err and "Rerun the same command" in err
    assert len(err.strip().splitlines()) == 1


def test_an_internal_error_says_so_and_how_to_see_it(empty_dir, capsys, monkeypatch):
    _fail_with(monkeypatch, RuntimeError("shape mismatch in layer 3"))
    code = main(["pipeline", "--preset", "smoke", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert err.startswith("interp: internal error: RuntimeError: shape mismatch in layer 3")
    assert "--debug" in err and "INTERP_DEBUG=1" in err
    with pytest.raises(RuntimeError, match="layer 3"):
        main(["--debug", "pipeline", "--preset", "smoke", "--quiet"])
    monkeypatch.setenv("INTERP_DEBUG", "1")
    with pytest.raises(RuntimeError, match="layer 3"):
        main(["pipeline", "--preset", "smoke", "--quiet"])


def test_os_errors_name_the_file(empty_dir, capsys, monkeypatch):
    _fail_with(monkeypatch, PermissionError(13, "Permission denied", "/data/figures/x.png"))
    code = main(["pipeline", "--preset", "smoke", "--quiet"])
    _check_error(capsys, code, 1, ["Permission denied"], ["/data/figures/x.png"])


@pytest.mark.parametrize("section", ["grpo", "analysis"])
def test_a_device_this_machine_lacks_stops_the_run_before_any_work(section, empty_dir, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    path = empty_dir / "cuda.json"
    path.write_text(_json({section: {"device": "cuda"}}))
    code = main(["pipeline", "--preset", "smoke", "--config", str(path), "--quiet"])
    _check_error(capsys, code, 1, ["device 'cuda'", "not available"], [])
    assert sorted(p.name for p in empty_dir.iterdir()) == ["cuda.json"]  # nothing trained


def test_set_flags_override_settings_like_a_file(empty_dir, capsys):
    """`--set SECTION.FIELD=VALUE` goes through the same keys and types as a config file."""
    argv = ["pipeline", "--preset", "smoke", "--dry-run", "--set", "organism.steps=7"]
    assert main([*argv, "--set", 'regimes=["sft"]', "--set", "grpo.reward=agreement"]) == 0
    out = capsys.readouterr().out
    assert '"steps": 7' in out and '"stage": "sft"' in out and '"stage": "cpt"' not in out
    code = main(["pipeline", "--dry-run", "--set", "organism.steps=many"])
    _check_error(capsys, code, 1, ["organism.steps = 'many' is a string"], [])
    code = main(["pipeline", "--dry-run", "--set", "organism.stepz=3"])
    _check_error(capsys, code, 1, ["'organism.stepz'"], [])
    code = main(["pipeline", "--dry-run", "--set", "organism.steps"])
    _check_error(capsys, code, 1, ["expected SECTION.FIELD=VALUE"], [])
    assert not any(empty_dir.iterdir())  # a dry run writes nothing
