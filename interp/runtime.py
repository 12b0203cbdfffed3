"""What to compute in, and with how many threads, on the machine at hand.

    plan = compute_plan("auto")        # float32 on an AVX2-only CPU, bfloat16 where it is native
    plan.dtype, plan.threads, plan.reason
    with plan.threads_applied():       # torch threads for a block of work
        ...
    governor = ThreadGovernor(plan.threads)
    governor.update()                  # in a training loop: yield a core to other busy processes

Precision: bf16 autocast on a CPU is fast only where the CPU has native bf16 (avx512_bf16 or
AMX); elsewhere torch emulates it and an organism step is about 20x slower than in float32
(measured: 6.4 s vs 0.33 s per 16 x 128-token step on an AVX2-only AMD EPYC). "auto" takes
bf16 on CUDA and on CPUs whose flags list native bf16 (confirmed by a short measurement),
float32 otherwise.

Threads: OpenMP threads wait for each other at every operation, so on a 2-core machine where
another process keeps one core busy, 2 threads run at less than half speed (a step 2.66x
slower) while 1 thread loses only what the core share costs (1.7x). The governor counts the
cores other processes used since its last look (/proc/stat minus this process's own time) and
sets torch's threads to the cores left. On this machine float32 training gives bitwise equal
results with 1 and 2 threads, so the choice changes speed, not results; the plan and the
thread counts used are recorded in every manifest.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from interp.errors import ConfigError

PRECISIONS = ("auto", "float32", "bfloat16")
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@dataclass(frozen=True)
class ComputePlan:
    """Where and in what precision training runs, and why."""

    device: str  # "cpu" or "cuda"
    dtype: str  # "float32" or "bfloat16"
    threads: int  # torch threads at the start (the governor may lower them under load)
    reason: str

    @property
    def bf16(self) -> bool:
        return self.dtype == "bfloat16"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @contextlib.contextmanager
    def threads_applied(self) -> Iterator[None]:
        """torch's thread count set to this plan's for the block, restored after."""
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@lru_cache(maxsize=1)
def _bf16_measured_faster(threads: int) -> tuple[bool, str]:
    """Time a small training-shaped matmul chain in float32 and in bf16 autocast (about 0.3 s)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        a = torch.randn(512, 256)
        w = torch.randn(256, 1024, requires_grad=True)

    def run(bf16: bool) -> float:
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = (a @ w).relu() @ w.T
            out.float().sum().backward()
            best = min(best, time.perf_counter() - start)
        return best

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        run(False), run(True)  # warm up both paths
        fp32, bf16 = run(False), run(True)
    finally:
        torch.set_num_threads(before)
    return bf16 < fp32, f"measured bf16 {bf16 * 1e3:.1f} ms vs float32 {fp32 * 1e3:.1f} ms"


def choose_precision(requested: str = "auto", device: str = "cpu", threads: int = 1):
    """(dtype, reason) for `requested` in PRECISIONS on `device`."""
    if requested not in PRECISIONS:
        raise ConfigError(f"precision={requested!r}. Fix: use one of {', '.join(PRECISIONS)}")
    if device == "cuda":
        if requested != "auto":
            return requested, "as requested"
        import torch

        if torch.cuda.is_bf16_supported():
            return "bfloat16", "CUDA device with bf16 support"
        return "float32", "CUDA device without bf16 support"
    native = sorted(NATIVE_BF16_FLAGS & cpu_flags())
    if requested == "float32":
        return "float32", "as requested"
    if requested == "bfloat16":
        if native:
            return "bfloat16", f"as requested (CPU flags {', '.join(native)})"
        return "bfloat16", (
            "as requested, but this CPU has no native bf16 (no avx512_bf16 or amx_bf16 flag): "
            "bf16 autocast is emulated and about 20x slower than float32. Fix: precision='auto' "
            "or 'float32'"
        )
    if not native:
        return "float32", "CPU without native bf16 (no avx512_bf16 or amx_bf16 flag)"
    faster, measured = _bf16_measured_faster(threads)
    if faster:
        return "bfloat16", f"CPU flags {', '.join(native)}; {measured}"
    return "float32", f"CPU flags {', '.join(native)}, but {measured}"


def compute_plan(
    precision: str = "auto", threads: int | None = None, device: str = "cpu"
) -> ComputePlan:
    """The precision and starting thread count for training on `device`.

    threads=None: the cores other processes leave idle right now (at least 1).
    """
    if threads is not None and threads < 1:
        raise ConfigError(f"threads={threads}: must be at least 1, or None (choose)")
    chosen = threads or idle_cores()
    dtype, reason = choose_precision(precision, device, chosen)
    return ComputePlan(device, dtype, chosen, reason)


def slow_precision_warning(plan: ComputePlan) -> str | None:
    """A sentence naming a precision this CPU runs slowly, with the fix; None when fine."""
    if plan.device == "cpu" and plan.bf16 and not (NATIVE_BF16_FLAGS & cpu_flags()):
        return (
            "training in bf16 autocast on a CPU without native bf16 (no avx512_bf16 or "
            "amx_bf16): about 20x slower than float32. Fix: precision='auto' or 'float32'"
        )
    return None


# ---- threads under load ------------------------------------------------------------------------


def _busy_jiffies() -> tuple[int, int] | None:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat; None elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = handle.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    values = [int(v) for v in fields[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values[:8]) - idle, sum(values[:8])


def _own_seconds() -> float:
    times = os.times()
    return times.user + times.system


def idle_cores(interval: float = 0.2) -> int:
    """Cores not used by other processes, sampled over `interval` seconds (all where unknown)."""
    cores = usable_cores()
    first = _busy_jiffies()
    if first is None:
        return cores
    own = _own_seconds()
    time.sleep(interval)
    second = _busy_jiffies()
    return _free(cores, first, second, _own_seconds() - own)


def _free(cores: int, first, second, own_seconds: float) -> int:
    busy, total = second[0] - first[0], second[1] - first[1]
    if total <= 0:
        return cores
    ncpu = os.cpu_count() or cores
    # ticks are per CPU: busy / total is the busy share of all CPUs together
    tick = total / ncpu  # ticks per CPU over the interval
    others = max(0.0, busy - own_seconds * os.sysconf("SC_CLK_TCK")) / max(tick, 1e-9)
    return int(max(1, min(cores, round(cores - others))))


class ThreadGovernor:
    """Keeps torch's threads at the cores other processes leave free (never above `limit`).

    Call `update()` now and then (every few seconds of work); it looks at the CPU time used
    since the previous call, so it never sleeps. `history` records (step, threads) changes.
    """

    def __init__(self, limit: int, *, every_s: float = 5.0, enabled: bool = True):
        self.limit = max(1, limit)
        self.every_s = every_s
        self.enabled = enabled and _busy_jiffies() is not None
        self.history: list[tuple[int, int]] = []
        self._mark = (time.perf_counter(), _busy_jiffies(), _own_seconds())

    def update(self, step: int = 0) -> int:
        import torch

        current = torch.get_num_threads()
        if not self.enabled:
            return current
        now = time.perf_counter()
        if now - self._mark[0] < self.every_s:
            return current
        jiffies, own = _busy_jiffies(), _own_seconds()
        free = _free(self.limit, self._mark[1], jiffies, own - self._mark[2])
        self._mark = (now, jiffies, own)
        if free != current:
            torch.set_num_threads(free)
            self.history.append((step, free))
        return free
