"""The failed-auth throttle's memory stays bounded however many addresses guess."""

from __future__ import annotations

import pytest

from torouter import auth_throttle
from torouter.auth_throttle import AuthThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(auth_throttle.time, "monotonic", clock)
    monkeypatch.setattr(auth_throttle, "_MAX_TRACKED", 3)
    return clock


def scope(address: str) -> dict:
    return {"type": "http", "client": (address, 40000), "headers": []}


def test_expired_windows_are_swept_when_the_table_is_full(clock: Clock) -> None:
    throttle = AuthThrottle(limit=2, window=60)
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        throttle.failed(scope(address))
        throttle.failed(scope(address))  # the second failure blocks it
    assert set(throttle.blocked) == {"10.0.0.1", "10.0.0.2", "10.0.0.3"}
    clock.now += 61
    throttle.failed(scope("10.0.0.4"))
    assert set(throttle._failures) == {"10.0.0.4"}
    assert throttle.blocked == {}, "blocks that ended are swept with their windows"


def test_a_full_table_of_live_windows_is_dropped_rather_than_grown(clock: Clock) -> None:
    throttle = AuthThrottle(limit=2, window=60)
    for i in range(3):
        throttle.failed(scope(f"10.0.1.{i}"))
        clock.now += 1
    throttle.failed(scope("10.0.1.9"))
    assert set(throttle._failures) == {"10.0.1.9"}
    # Counting goes on for the addresses that keep failing: the next failure blocks 10.0.1.9.
    throttle.failed(scope("10.0.1.9"))
    with pytest.raises(Exception) as refused:
        throttle.check(scope("10.0.1.9"))
    assert getattr(refused.value, "code", None) == "too_many_auth_failures"
    throttle.check(scope("10.0.1.0"))  # not blocked: one failure only


def test_many_guessing_addresses_never_hold_more_than_the_cap(clock: Clock) -> None:
    throttle = AuthThrottle(limit=5, window=60)
    for i in range(1000):
        throttle.failed(scope(f"10.1.{i // 256}.{i % 256}"))
        clock.now += 0.01
        assert len(throttle._failures) <= 3
