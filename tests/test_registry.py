"""Adding a regime is one registry entry: the CLI, the config checker, the pipeline plan and
its dry run all read it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from interp.cli import main
from interp.config import load_config
from interp.errors import ConfigError
from interp.pipeline import dry_run, plan, stages
from interp.train.regimes import RegimeConfig
from interp.train.registry import Regime, get_regime, register_regime, unregister_regime


@dataclass(frozen=True)
class ToyRegime(RegimeConfig):
    """A regime the project does not have: one extra field and its own presets."""

    strength: float = 1.0
    flavour: str = "plain"

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"max_steps": 2, "strength": 0.5},
        "default": {"strength": 1.5},
        "paper": {"strength": 3.0},
    }


def train_toy(parent, facts, out, settings, *, overwrite=False, resume=True):
    raise AssertionError("the plan and the dry run train nothing")


@pytest.fixture
def toy():
    entries = [
        Regime(name="toy", config=ToyRegime, train=train_toy, help="a toy regime for a test"),
        Regime(
            name="toy-after-cpt",
            config=None,
            train=None,
            help="toy from CPT",
            parent="cpt",
            uses="toy",
        ),
    ]
    for entry in entries:
        register_regime(entry)
    yield entries
    for entry in reversed(entries):
        unregister_regime(entry.name)


def test_a_registered_regime_is_in_the_cli_help(toy, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    listing = capsys.readouterr().out
    assert "toy" in listing and "a toy regime for a test" in listing
    assert "toy-after-cpt" not in listing  # a pipeline stage of toy, not a command
    with pytest.raises(SystemExit):
        main(["train", "toy", "--help"])
    text = capsys.readouterr().out
    # its fields are flags, with the default preset's values
    assert "--strength X" in text and "default: 1.5" in text and "--flavour TEXT" in text


def test_a_registered_regime_is_checked_by_the_config(toy):
    config = load_config("smoke", regimes=["toy"], toy={"strength": 2.0})
    assert isinstance(config.toy, ToyRegime)
    assert config.toy.strength == 2.0 and config.toy.max_steps == 2  # the smoke preset beneath
    with pytest.raises(
        ConfigError, match=r"toy\.strength = 'big' is a string; it must be a number"
    ):
        load_config("smoke", regimes=["toy"], toy={"strength": "big"})
    with pytest.raises(ConfigError, match=r"'toy\.colour'"):
        load_config("smoke", regimes=["toy"], toy={"colour": "red"})
    # a stage of toy from CPT needs CPT in the run
    with pytest.raises(ConfigError, match="starts from 'cpt'"):
        load_config("smoke", regimes=["toy-after-cpt"])
    # without the entry the section is unknown
    unregister_regime("toy-after-cpt")
    unregister_regime("toy")
    try:
        with pytest.raises(ConfigError, match="unknown key"):
            load_config("smoke", toy={"strength": 2.0})
    finally:
        for entry in toy:
            register_regime(entry)


def test_a_registered_regime_is_in_the_pipeline_plan(toy, tmp_path, capsys):
    config = load_config("smoke", regimes=["cpt", "toy", "toy-after-cpt"], toy={"flavour": "spicy"})
    assert stages(config) == (
        "facts",
        "base",
        "cpt",
        "toy",
        "toy-after-cpt",
        "evaluate",
        "score",
        "represent",
        "figures",
    )
    planned = {entry["stage"]: entry for entry in plan(config)}
    assert planned["toy"]["parent"] == "base" and planned["toy"]["regime"] == "toy"
    assert planned["toy"]["settings"]["flavour"] == "spicy"
    assert planned["toy-after-cpt"]["parent"] == "cpt"
    assert planned["toy-after-cpt"]["settings"] == planned["toy"]["settings"]
    assert get_regime("toy-after-cpt").config_class() is ToyRegime
    report = dry_run(config)
    assert set(report["checks"]) == {"cpt", "toy", "toy-after-cpt"}
    # and from the command line, with a config file naming its section
    path = tmp_path / "toy.json"
    path.write_text(json.dumps({"regimes": ["toy"], "toy": {"strength": 4.0}}))
    assert main(["pipeline", "--preset", "smoke", "--config", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert '"stage": "toy"' in out and '"strength": 4.0' in out
    path.write_text(json.dumps({"regimes": ["toy"], "toy": {"strength": [1]}}))
    assert main(["pipeline", "--preset", "smoke", "--config", str(path), "--dry-run"]) == 1
    assert "toy.strength" in capsys.readouterr().err


def test_registry_refuses_a_name_twice_and_unknown_parents():
    with pytest.raises(ConfigError, match="already registered"):
        register_regime(Regime(name="grpo", config=ToyRegime, train=train_toy, help="again"))
    with pytest.raises(ConfigError, match="parent 'nothing'"):
        register_regime(
            Regime(name="x", config=ToyRegime, train=train_toy, help="x", parent="nothing")
        )
    with pytest.raises(ConfigError, match="unknown regime 'dpo'"):
        get_regime("dpo")
