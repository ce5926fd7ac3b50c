"""Deadline must decide every case as asyncio.timeout does: each scenario runs under both."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from torouter.upstreams.deadline import Deadline, IdleWatch


@contextlib.asynccontextmanager
async def with_deadline(delay: float) -> AsyncIterator[None]:
    with Deadline(delay):
        yield


@contextlib.asynccontextmanager
async def with_deadline_on_its_loop(delay: float) -> AsyncIterator[None]:
    with Deadline(delay, asyncio.get_running_loop()):  # as the upstream client passes it
        yield


@contextlib.asynccontextmanager
async def with_asyncio(delay: float) -> AsyncIterator[None]:
    async with asyncio.timeout(delay):
        yield


async def in_time(limit: Callable[[float], Any]) -> str:
    async with limit(0.05):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # past the deadline: no timer or cancellation left behind
    return "done"


async def too_slow(limit: Callable[[float], Any]) -> str:
    try:
        async with limit(0.02):
            await asyncio.sleep(5)
    except TimeoutError:
        await asyncio.sleep(0.01)  # the task goes on normally after the timeout
        return "timeout"
    return "done"


async def already_over(limit: Callable[[float], Any]) -> str:
    try:
        async with limit(-1):
            await asyncio.sleep(1)
    except TimeoutError:
        return "timeout"
    return "done"


async def cancelled_from_outside(limit: Callable[[float], Any]) -> str:
    async def body() -> None:
        async with limit(5):
            await asyncio.sleep(5)

    task = asyncio.create_task(body())
    await asyncio.sleep(0.01)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        return "cancelled"
    return "done"


async def cancelled_as_it_expires(limit: Callable[[float], Any]) -> str:
    async def body() -> None:
        async with limit(0.02):
            await asyncio.sleep(5)

    task = asyncio.create_task(body())
    await asyncio.sleep(0.03)  # the timer has fired and the task not yet run: both ask to cancel
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        return "cancelled"
    except TimeoutError:
        return "timeout"
    return "done"


async def cancelled_in_the_same_breath(limit: Callable[[float], Any]) -> str:
    task, loop = asyncio.current_task(), asyncio.get_running_loop()
    assert task is not None
    loop.call_at(loop.time() + 0.02, task.cancel)  # someone else's cancel, due just before the timer
    loop.call_at(loop.time() + 0.01, time.sleep, 0.05)  # a stall: both come due in one turn of the loop
    try:
        async with limit(0.02):
            await asyncio.sleep(1)
    except asyncio.CancelledError:
        return "cancelled"
    except TimeoutError:
        return "timeout"
    return "done"


async def inside_a_shorter_one(limit: Callable[[float], Any]) -> str:
    try:
        async with asyncio.timeout(0.02):
            async with limit(5):
                await asyncio.sleep(5)
    except TimeoutError:
        return "outer timeout"
    return "done"


async def around_a_shorter_one(limit: Callable[[float], Any]) -> str:
    try:
        async with limit(5):
            try:
                async with asyncio.timeout(0.02):
                    await asyncio.sleep(5)
            except TimeoutError:
                return "inner timeout"
    except TimeoutError:
        return "outer timeout"
    return "done"


async def error_inside(limit: Callable[[float], Any]) -> str:
    try:
        async with limit(5):
            raise KeyError("x")
    except KeyError:
        return "key error"
    return "done"


SCENARIOS = [
    in_time,
    too_slow,
    already_over,
    cancelled_from_outside,
    cancelled_as_it_expires,
    cancelled_in_the_same_breath,
    inside_a_shorter_one,
    around_a_shorter_one,
    error_inside,
]


@pytest.mark.parametrize("deadline", [with_deadline, with_deadline_on_its_loop], ids=["found", "given"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_deadline_decides_as_asyncio_timeout_does(scenario: Callable[..., Any], deadline: Any) -> None:
    expected = asyncio.run(scenario(with_asyncio))
    assert asyncio.run(scenario(deadline)) == expected
    assert expected != "done" or scenario is in_time  # each scenario does what it is named for


def test_deadline_needs_a_task() -> None:
    with pytest.raises(RuntimeError), Deadline(1):
        pass


# IdleWatch: a stream's idle limit, which only counts the time spent waiting for a read.


async def reads(delays: list[float], idle: float, outside: float = 0.0) -> int:
    """Reads that take `delays` seconds each under an IdleWatch, `outside` seconds apart."""
    loop = asyncio.get_running_loop()
    done = 0
    with IdleWatch(idle, loop) as watch:
        for delay in delays:
            watch.reading = loop.time()
            await asyncio.sleep(delay)  # the read
            watch.reading = 0.0
            done += 1
            await asyncio.sleep(outside)  # e.g. writing to a slow client
    return done


def test_idle_watch_lets_reads_shorter_than_the_limit_run_past_it() -> None:
    started = time.monotonic()
    assert asyncio.run(reads([0.04] * 6, idle=0.1)) == 6
    assert time.monotonic() - started >= 0.24  # several times the limit in all


def test_idle_watch_ends_a_read_that_waits_too_long() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        asyncio.run(reads([0.02, 0.02, 1.0], idle=0.1))
    assert 0.13 <= time.monotonic() - started < 0.5


def test_idle_watch_does_not_count_time_outside_reads() -> None:
    assert asyncio.run(reads([0.01] * 3, idle=0.05, outside=0.12)) == 3


def test_idle_watch_leaves_someone_elses_cancellation_alone() -> None:
    async def main() -> None:
        task = asyncio.create_task(reads([1.0], idle=0.5))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_idle_watch_leaves_no_timer_behind() -> None:
    async def main() -> str:
        await reads([0.01], idle=0.05)
        await asyncio.sleep(0.15)  # past the limit: a stray timer would cancel this task
        return "done"

    assert asyncio.run(main()) == "done"
