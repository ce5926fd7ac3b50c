"""The bounded soak test, short: a minute of mixed load on every surface, with client hang-ups and
upstream faults, against a gateway and an emulator in their own processes (see bench/soak.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from bench.soak import POOL_KEPT, STORE_FILES, Sample, check_fds, check_rss, run_soak

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


def samples(trees: list[tuple[str, tuple[int, ...], tuple[int, ...]]]) -> list[Sample]:
    """(phase, pids, helper pids) a second apart, at a steady 100 MB a process."""
    return [
        Sample(float(t), phase, 100.0 * len(pids), 10, 2, dict.fromkeys(pids, 100.0), helpers)
        for t, (phase, pids, helpers) in enumerate(trees)
    ]


def test_the_rss_check_lets_usage_writers_join_but_not_come_back() -> None:
    warm = [("warmup", (1, 2, 3), ())] * 3  # the workers have not flushed yet
    joined = [("warmup", (1, 2, 3, 7, 8), (7, 8))] * 3
    load = [("load", (1, 2, 3, 7, 8), (7, 8))] * 12
    assert check_rss(samples(warm + joined + load))[0].passed
    replaced_helper = load[:6] + [("load", (1, 2, 3, 7, 9), (7, 9))] * 6  # a writer died mid-load
    assert not check_rss(samples(warm + joined + replaced_helper))[0].passed
    replaced_worker = [("load", (1, 2, 4, 7, 8), (7, 8))] * 6  # a worker died and came back
    assert not check_rss(samples(warm + joined + load[:6] + replaced_worker))[0].passed


def idle(fds: int, store: int) -> Sample:
    """An idle sample of a supervisor (1), two workers (2, 3) and their usage writers (7, 8)."""
    return Sample(0.0, "settle", 500.0, fds, 33, dict.fromkeys((1, 2, 3, 7, 8), 100.0), (7, 8), store)


def test_the_fd_check_lets_the_pools_keep_connections_but_not_leak_others() -> None:
    # A burst made each pool keep two more connections (db and -wal each): no leak.
    assert check_fds(idle(109, 8), idle(117, 16)).passed
    # Four descriptors more beside the store: a leak, whatever the store did.
    assert not check_fds(idle(109, 8), idle(113, 8)).passed
    # More on the store than two pools of POOL_KEPT, two writers and the supervisor hold: a leak.
    bound = STORE_FILES * (POOL_KEPT * 2 + 2 + 1)
    assert check_fds(idle(109, 8), idle(109 - 8 + bound, bound)).passed
    assert not check_fds(idle(109, 8), idle(109 - 8 + bound + 1, bound + 1)).passed
