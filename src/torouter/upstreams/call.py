"""Sending one call upstream, moving to the next account when one fails before answering."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from torouter.accounting.limits import Held
from torouter.catalog import Account
from torouter.errors import GatewayError
from torouter.upstreams.client import UpstreamClient

log = logging.getLogger("torouter.upstream")

# Statuses that say "this account, now" rather than "this request": try the next account.
RETRYABLE = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


@dataclass(slots=True)
class Attempt:
    account: Account
    status: int
    error: str | None = None


@dataclass(slots=True)
class Outcome:
    """The response to relay (2xx or a final error), with what it took to get it."""

    account: Account
    response: aiohttp.ClientResponse | None
    status: int
    body: bytes | None = None
    attempts: list[Attempt] = field(default_factory=list)
    started: float = 0.0
    held: Held | None = None  # the account's own caps, held until the call settles


class NoUpstreamAnswered(GatewayError):
    """Every candidate failed without an HTTP answer (refused, reset, timed out)."""

    def __init__(self, kind: str, message: str, code: str, attempts: list[Attempt]) -> None:
        super().__init__(kind, message, code=code)
        self.attempts = len(attempts)
        self.attempt_log = attempt_log(attempts)
        self.account = attempts[-1].account.name if attempts else ""
        self.tried = attempts


RequestBuilder = Callable[[Account], tuple[str, dict[str, str], bytes]]


class AccountGate(Protocol):
    async def try_account(self, account: Account, tokens: int) -> Held | None: ...

    def settle(self, held: Held | None, tokens: int = 0, cost: float = 0.0) -> None: ...


class HealthReport(Protocol):
    def succeeded(self, account: Account, wait: float | None = None) -> None: ...

    def failed(
        self, account: Account, status: int, retry_after: float | None = None, reason: str = ""
    ) -> None: ...


async def send(
    client: UpstreamClient,
    candidates: list[Account],
    build: RequestBuilder,
    health: HealthReport | None = None,
    max_attempts: int = 3,
    deadline: float | None = None,
    gate: AccountGate | None = None,
    tokens: int = 0,
) -> Outcome:
    """Try the candidates in order. Returns an open response on success (the caller must release it).

    A connection error, a timeout, a retryable status or a refused credential (401/403) moves on
    to the next account, up to `max_attempts` accounts and until the monotonic `deadline`. When
    every attempt fails, the last upstream error answer is returned, or a 502/504 if none answered.
    """
    if not candidates:
        raise GatewayError(
            "unavailable", "No upstream account is available for this group right now.", code="no_upstream"
        )
    attempts: list[Attempt] = []
    last: Outcome | None = None
    failure = ("bad_gateway", "Could not reach the upstream.", "upstream_unreachable")
    started = time.perf_counter()
    if gate is not None and any(a.limited for a in candidates):
        return await _send_within_caps(
            client, candidates, build, health, max_attempts, deadline, gate, tokens
        )
    tried = candidates[: max(1, max_attempts)]
    for i, account in enumerate(tried):
        if i and deadline is not None and time.monotonic() >= deadline:
            break
        final = i == len(tried) - 1
        url, headers, body = build(account)
        first_byte, idle = account.first_byte_timeout, account.idle_timeout
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=account.connect_timeout, sock_read=max(first_byte, idle)
        )
        sent_at = time.perf_counter()
        try:
            if first_byte < idle:  # the headers must come sooner than the gaps between chunks may last
                async with asyncio.timeout(first_byte):
                    resp = await client.session.post(
                        url, data=body, headers=headers, timeout=timeout, allow_redirects=False
                    )
            else:
                resp = await client.session.post(
                    url, data=body, headers=headers, timeout=timeout, allow_redirects=False
                )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            timed_out = isinstance(exc, asyncio.TimeoutError)
            attempts.append(Attempt(account, 0, type(exc).__name__))
            log.warning("upstream %s: %s", account.name, type(exc).__name__)
            if health is not None:
                health.failed(account, 0, None, "timeout" if timed_out else type(exc).__name__)
            if timed_out:
                failure = ("timeout", "The upstream did not answer in time.", "upstream_timeout")
            else:
                failure = ("bad_gateway", "Could not reach the upstream.", "upstream_unreachable")
            continue
        if resp.status < 400:
            attempts.append(Attempt(account, resp.status))
            if health is not None:
                health.succeeded(account, time.perf_counter() - sent_at)
            return Outcome(account, resp, resp.status, attempts=attempts, started=started)
        try:
            data = await resp.read()
        except (TimeoutError, aiohttp.ClientError):
            data = b""
        finally:
            resp.release()
        attempts.append(Attempt(account, resp.status))
        last = Outcome(account, resp, resp.status, body=data, attempts=attempts, started=started)
        moves_on = resp.status in RETRYABLE or resp.status in (401, 403)
        if health is not None and moves_on:
            health.failed(
                account,
                resp.status,
                retry_after_seconds(resp.headers.get("retry-after")),
                f"HTTP {resp.status}",
            )
        if not moves_on or final:
            return last
    if last is not None:
        return last
    raise NoUpstreamAnswered(*failure, attempts=attempts)


async def _send_within_caps(
    client: UpstreamClient,
    candidates: list[Account],
    build: RequestBuilder,
    health: HealthReport | None,
    max_attempts: int,
    deadline: float | None,
    gate: AccountGate,
    tokens: int,
) -> Outcome:
    """Like `send`, but an account at its own concurrency, RPM or TPM cap is passed over.

    A slot is taken just before its account is tried and given back as soon as that attempt
    fails, so a call never holds an account it is not using. Passing over is not an attempt.
    """
    attempts: list[Attempt] = []
    last: Outcome | None = None
    unanswered: NoUpstreamAnswered | None = None
    made = 0
    for account in candidates:
        if made >= max(1, max_attempts) or (made and deadline is not None and time.monotonic() >= deadline):
            break
        held = None
        if account.limited:
            held = await gate.try_account(account, tokens)
            if held is None:
                attempts.append(Attempt(account, 429, "account_at_capacity"))
                continue
        made += 1
        try:
            outcome = await send(client, [account], build, health, 1)
        except NoUpstreamAnswered as exc:
            gate.settle(held)
            attempts.extend(exc.tried)
            unanswered = exc
            continue
        except BaseException:
            gate.settle(held)
            raise
        attempts.extend(outcome.attempts)
        outcome.attempts = attempts
        if outcome.response is not None and outcome.status < 400:
            outcome.held = held
            return outcome
        gate.settle(held)  # the attempt failed: its slot goes back at once
        last = outcome
        if outcome.status not in RETRYABLE and outcome.status not in (401, 403):
            break
    if last is not None:
        return last
    if unanswered is not None:
        raise NoUpstreamAnswered(unanswered.kind, unanswered.message, unanswered.code or "", attempts)
    raise GatewayError(
        "rate_limit",
        "Every upstream account of this group is at its concurrency or rate cap. Please retry shortly.",
        code="upstream_capacity",
        headers={"retry-after": "1"},
    )


def attempt_log(attempts: list[Attempt]) -> list[dict[str, Any]] | None:
    """What each attempt of a call that failed over met; None when the first attempt was the last."""
    if len(attempts) < 2:
        return None
    return [{"account": a.account.name, "status": a.status, "error": a.error} for a in attempts]


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def scrub(text: str, account: Account) -> str:
    """Remove what must never reach a client: the credential and the upstream's host name."""
    if account.credential:
        text = text.replace(account.credential, "[redacted]")
    host = re.sub(r"^https?://", "", account.base_url).split("/", 1)[0]
    if host:
        text = text.replace(host, "upstream")
    return re.sub(r"(sk|key|AIza)[-_A-Za-z0-9]{16,}", "[redacted]", text)
