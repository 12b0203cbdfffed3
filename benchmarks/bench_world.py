"""Time the offline world build (target: under 10 s on a 2-core CPU).

python benchmarks/bench_world.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    # each round in a fresh process: the cold start (imports, CLDR and GeoNames loading) counts
    code = (
        "import time; t = time.perf_counter(); from interp.facts import build_world; "
        "facts, _ = build_world(); print(time.perf_counter() - t, len(facts))"
    )
    times = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        wall = time.perf_counter() - start
        inner, n_facts = out.stdout.split()
        times.append((float(inner), wall))
        print(
            f"build_world: {float(inner):.2f} s in process, {wall:.2f} s with interpreter start, {n_facts} facts"
        )
    print(
        f"median: {statistics.median(t for t, _ in times):.2f} s (in process), "
        f"{statistics.median(w for _, w in times):.2f} s (wall); target < 10 s"
    )


if __name__ == "__main__":
    main()
