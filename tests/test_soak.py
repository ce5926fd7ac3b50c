"""The bounded soak test, short: a minute of mixed load on every surface, with client hang-ups and
upstream faults, against a gateway and an emulator in their own processes (see bench/soak.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from bench.soak import run_soak

SECONDS = float(os.environ.get("TOROUTER_SOAK_SECONDS", "60"))


@pytest.mark.soak
def test_a_minute_of_mixed_load_leaks_no_memory_no_descriptors_and_loses_no_usage_row(tmp_path: Path) -> None:
    report = run_soak(duration=SECONDS, workdir=tmp_path, strict=True)
    print(report.summary())
    assert report.calls_per_second > 20, report.summary()  # the load really ran
    assert report.hung_up and report.planned.get("fault"), report.summary()  # and had its hang-ups and faults
    # clean: every answer parsed, every stream ended with its end or an error event, no error in the log.
    for name in ("rss", "fds", "usage", "clean"):
        assert report.checks[name].passed, f"{name}: {report.checks[name].detail}\n{report.summary()}"
