"""Precision and thread choice: the CPU's flags decide bf16, a busy core lowers the threads."""

from __future__ import annotations

import os

import pytest

from interp import runtime
from interp.errors import ConfigError


def test_no_native_bf16_means_float32(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    dtype, reason = runtime.choose_precision("auto", "cpu")
    assert dtype == "float32" and "no avx512_bf16" in reason
    # asked for bf16 anyway: honoured, with the reason naming the cost and the fix
    dtype, reason = runtime.choose_precision("bfloat16", "cpu")
    assert dtype == "bfloat16" and "20x slower" in reason and "Fix" in reason
    plan = runtime.ComputePlan("cpu", "bfloat16", 1, reason)
    assert "Fix" in runtime.slow_precision_warning(plan)
    assert runtime.slow_precision_warning(runtime.ComputePlan("cpu", "float32", 1, "")) is None


def test_native_bf16_is_confirmed_by_measurement(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2", "amx_bf16"}))
    monkeypatch.setattr(runtime, "_bf16_measured_faster", lambda threads: (True, "measured"))
    assert runtime.choose_precision("auto", "cpu")[0] == "bfloat16"
    monkeypatch.setattr(runtime, "_bf16_measured_faster", lambda threads: (False, "measured"))
    dtype, reason = runtime.choose_precision("auto", "cpu")
    assert dtype == "float32" and "amx_bf16" in reason
    with pytest.raises(ConfigError, match="precision"):
        runtime.choose_precision("fp8", "cpu")


def test_the_measurement_runs_here():
    faster, text = runtime._bf16_measured_faster(1)
    assert isinstance(faster, bool) and "ms" in text


def test_free_cores_subtract_other_processes(monkeypatch):
    ticks = os.sysconf("SC_CLK_TCK")
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    # one second on 2 CPUs = 2 * ticks; all of it busy, half of it ours -> one core is taken
    first, second = (0, 0), (2 * ticks, 2 * ticks)
    assert runtime._free(2, first, second, own_seconds=1.0) == 1
    # busy but all ours: both cores free for us
    assert runtime._free(2, first, second, own_seconds=2.0) == 2
    # both cores taken by others: still one thread
    assert runtime._free(2, first, second, own_seconds=0.0) == 1
    # idle machine
    assert runtime._free(2, first, (0, 2 * ticks), own_seconds=0.0) == 2


def test_governor_sets_torch_threads_and_records_changes(monkeypatch):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        governor = runtime.ThreadGovernor(2, every_s=0.0)
        if not governor.enabled:
            pytest.skip("no /proc/stat here")
        monkeypatch.setattr(runtime, "_free", lambda *args: 1)
        assert governor.update(step=7) == 1
        assert torch.get_num_threads() == 1 and governor.history == [(7, 1)]
        assert governor.update(step=8) == 1 and governor.history == [(7, 1)]  # no change
        off = runtime.ThreadGovernor(2, enabled=False)
        assert off.update(3) == torch.get_num_threads() and off.history == []
    finally:
        torch.set_num_threads(before)


def test_compute_plan_checks_threads():
    with pytest.raises(ConfigError, match="threads"):
        runtime.compute_plan(threads=0)
    plan = runtime.compute_plan("float32", threads=1)
    assert plan.dtype == "float32" and plan.threads == 1 and plan.to_dict()["device"] == "cpu"
