"""Kill the smoke pipeline at several moments, rerun it, and compare with an uninterrupted run.

    .venv/bin/python tests/kill_check.py [--work DIR] [--moments base,grpo,evaluate,score,figures]

For each moment and signal (SIGINT, SIGKILL): start `interp pipeline --preset smoke` in a fresh
folder, wait until the stage has been running for a while, send the signal, then rerun the same
command to the end. Checks: a SIGINT run exits 130 with one line and no traceback; no
temporary files or folders are left once the rerun ends; every file of `figures/smoke` is
byte-identical to the uninterrupted run's. Prints one line per case and exits 1 on a failure.
Not part of the test suite (about a minute per run on 2 cores); run it after changing how
stages save, resume or write.
"""

from __future__ import annotations

import argparse
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INTERP = Path(sys.executable).with_name("interp")
COMMAND = [str(INTERP), "pipeline", "--preset", "smoke", "--quiet"]
# moment -> (the stage whose start we wait for, seconds to wait after it starts)
MOMENTS = {  # the smoke stages take about: base 7 s, grpo 1 s, evaluate 2 s, score 4 s, figures 50 s
    "base": ("base", 3.0),
    "grpo": ("grpo", 0.5),
    "evaluate": ("evaluate", 0.8),
    "score": ("score", 2.0),
    "figures": ("figures", 10.0),
    "figures-late": ("figures", 40.0),  # while the paper's 7B figures are drawn
}


def _env() -> dict[str, str]:
    return {**os.environ, "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1"}


def run_to_end(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        COMMAND, cwd=folder, env=_env(), capture_output=True, text=True, check=False
    )


def run_and_kill(folder: Path, stage: str, delay: float, sig: int) -> tuple[int, str, str]:
    """Start the pipeline, send `sig` `delay` s after `[stage] running`; returns the exit code,
    stderr and the stage that was running when the signal went ("" if the run ended first)."""
    proc = subprocess.Popen(
        COMMAND, cwd=folder, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    started, running = None, ""
    while proc.poll() is None:
        for _key, _ in selector.select(timeout=0.1):
            line = proc.stdout.readline()
            if line.endswith("running ...\n"):
                running = line[1:].split("]")[0]
                if running == stage and started is None:
                    started = time.monotonic()
            elif " done in " in line or "up to date" in line:
                running = ""
        if started is not None and time.monotonic() - started >= delay:
            proc.send_signal(sig)
            break
    during = running if proc.poll() is None else ""
    _out, err = proc.communicate()
    return proc.returncode, err, during


def leftovers(folder: Path) -> list[str]:
    return [
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.name.endswith((".tmp", ".old", ".partial")) or ".tmp" in p.name.split(".")
    ]


def files(folder: Path) -> dict[str, bytes]:
    """The report's files (not `inputs/` and `comparison.json`, which name checkpoint folders
    and their analysis keys, and differ between any two training runs)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
        and p.name != "comparison.json"
        and "inputs" not in p.relative_to(folder).parts
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", help="folder for the runs (default: a temporary one)")
    parser.add_argument("--moments", default=",".join(MOMENTS), help="comma-separated moments")
    parser.add_argument("--signals", default="INT,KILL", help="comma-separated: INT, KILL")
    args = parser.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="kill-check-"))
    work.mkdir(parents=True, exist_ok=True)

    reference = work / "uninterrupted"
    reference.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    done = run_to_end(reference)
    if done.returncode != 0:
        print(done.stderr[-2000:])
        return 1
    expected = files(reference / "figures" / "smoke")
    print(
        f"uninterrupted: {len(expected)} files in figures/smoke ({time.perf_counter() - t0:.0f} s)"
    )

    failures = 0
    for moment in args.moments.split(","):
        stage, delay = MOMENTS[moment]
        for name in args.signals.split(","):
            sig = getattr(signal, f"SIG{name}")
            folder = work / f"{moment}-{name.lower()}"
            folder.mkdir(exist_ok=True)
            code, err, during = run_and_kill(folder, stage, delay, sig)
            problems = []
            if not during:
                problems.append(f"no stage was running {delay} s after {stage} started")
            if sig == signal.SIGINT and during:
                if code != 130:
                    problems.append(f"SIGINT exit code {code}, not 130")
                if "Traceback" in err or "interp: interrupted" not in err:
                    problems.append(f"SIGINT message: {err.strip()[-300:]!r}")
            rerun = run_to_end(folder)
            if rerun.returncode != 0:
                problems.append(f"rerun failed: {rerun.stderr.strip()[-300:]}")
            left = leftovers(folder)
            if left:
                problems.append(f"left behind: {left[:5]}")
            got = files(folder / "figures" / "smoke")
            differ = sorted(k for k in set(expected) | set(got) if expected.get(k) != got.get(k))
            if differ:
                problems.append(f"{len(differ)} files differ, e.g. {differ[:4]}")
            status = "ok" if not problems else "FAIL: " + "; ".join(problems)
            skipped = [s.split("]")[0][1:] for s in rerun.stdout.splitlines() if "up to date" in s]
            print(
                f"{moment:9s} SIG{name:4s} during {during or '-':9s} exit {code:4d}; rerun "
                f"reused {skipped}: {status}"
            )
            failures += bool(problems)
    print(f"\n{failures} failure(s); runs in {work}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
