"""Atomic writes: the user's umask, a killed writer's leftovers removed, state files that run no
code."""

from __future__ import annotations

import os
import pickle
import signal
import stat
import subprocess
import sys
import textwrap

import pytest

from interp.errors import DataError
from interp.io import (
    atomic_directory,
    atomic_write_text,
    load_state_file,
    remove_leftovers,
    save_state_file,
)


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield 0o027
    os.umask(old)


def test_files_and_folders_get_the_users_umask(tmp_path, umask_027):
    path = atomic_write_text(tmp_path / "a.txt", "x")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # 0666 & ~027, not mkstemp's 0600
    with atomic_directory(tmp_path / "folder") as tmp:
        (tmp / "inside.txt").write_text("y")
    assert stat.S_IMODE((tmp_path / "folder").stat().st_mode) == 0o750  # not mkdtemp's 0700


def _killed_writer(target, kind: str) -> None:
    """A child process that starts an atomic write of `target` and is SIGKILLed inside it."""
    code = textwrap.dedent(
        f"""
        import os, signal, time
        from interp.io import atomic_directory, atomic_write_bytes
        if {kind!r} == "folder":
            with atomic_directory({str(target)!r}) as tmp:
                (tmp / "part.txt").write_text("half")
                os.kill(os.getpid(), signal.SIGKILL)
        else:
            import interp.io as io
            def die(*args):
                os.kill(os.getpid(), signal.SIGKILL)
            io.os.replace = die
            atomic_write_bytes({str(target)!r}, b"half")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], check=False)
    assert done.returncode == -signal.SIGKILL


@pytest.mark.parametrize("kind", ["folder", "file"])
def test_a_killed_writers_leftovers_are_removed_by_the_next_write(tmp_path, kind):
    target = tmp_path / "out"
    _killed_writer(target, kind)
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]
    assert len(left) == 1 and left[0].name.endswith(".tmp")  # what SIGKILL leaves
    assert not target.exists()
    live = tmp_path / f".out.{os.getpid()}.abc.tmp"  # a live writer's file is not touched
    live.write_text("mine")
    if kind == "folder":
        with atomic_directory(target) as tmp:
            (tmp / "part.txt").write_text("whole")
    else:
        atomic_write_text(target, "whole")
    remaining = sorted(p.name for p in tmp_path.iterdir())
    assert remaining == sorted(["out", live.name])
    assert remove_leftovers(target) == []


def test_state_files_round_trip_and_refuse_pickles(tmp_path):
    import torch

    state = {
        "step": 3,
        "losses": [(1, 0.5), (2, 0.25)],
        "optimizer": {"state": {0: {"exp_avg": torch.arange(4.0)}}, "betas": (0.9, 0.95)},
        "rng": torch.get_rng_state(),
        "note": None,
    }
    path = save_state_file(tmp_path / "state.safetensors", state)
    back = load_state_file(path, fix="start over")
    assert back["step"] == 3 and back["losses"] == [(1, 0.5), (2, 0.25)]
    assert back["optimizer"]["betas"] == (0.9, 0.95)
    assert torch.equal(back["optimizer"]["state"][0]["exp_avg"], torch.arange(4.0))
    assert torch.equal(back["rng"], state["rng"]) and back["note"] is None

    crafted = tmp_path / "crafted.safetensors"
    crafted.write_bytes(pickle.dumps({"step": 1}))
    with pytest.raises(DataError, match=r"crafted.safetensors: not a training state.*start over"):
        load_state_file(crafted, fix="start over")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataError, match="cut.safetensors"):
        load_state_file(cut, fix="start over")


def test_a_facts_build_killed_mid_write_leaves_nothing_after_the_next_build(tmp_path, capsys):
    """SIGKILL inside `interp facts build` (after its first file, before the rename): the
    hidden temporary folder it leaves is removed by the next build, which lands whole."""
    from interp.cli import main

    out = tmp_path / "world"
    argv = ["facts", "build", "--languages", "en", "de", "--out", str(out)]
    code = textwrap.dedent(
        f"""
        import os, signal
        import interp.facts.polyfact as polyfact
        real, calls = polyfact._jsonl, []
        def die_on_second(records):
            calls.append(1)
            if len(calls) == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(records)
        polyfact._jsonl = die_on_second
        from interp.cli import main
        main({argv!r})
        """
    )
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True)
    assert done.returncode == -signal.SIGKILL
    left = [p.name for p in tmp_path.iterdir()]
    assert not out.exists() and len(left) == 1 and left[0].endswith(".tmp")  # the leftover
    assert main(argv) == 0
    capsys.readouterr()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["world"]
    assert main(["facts", "validate", str(out)]) == 0
