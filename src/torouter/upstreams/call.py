"""Sending one call upstream, moving to the next account when one fails before answering."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import aiohttp
import orjson

from torouter.accounting.limits import Held
from torouter.catalog import Account, any_limited
from torouter.errors import GatewayError
from torouter.protocols.sse import SSE_FIELDS, well_formed
from torouter.upstreams.client import UpstreamClient
from torouter.upstreams.deadline import Deadline

log = logging.getLogger("torouter.upstream")

# Statuses that say "this account, now" rather than "this request": try the next account.
RETRYABLE = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


@dataclass(slots=True)
class Attempt:
    account: Account
    status: int
    error: str | None = None


# What a 2xx answer must start with before the call commits to its account: a whole JSON body,
# an SSE stream, or a streamed JSON array (Gemini without ?alt=sse).
Expect = Literal["json", "sse", "array"]
HEAD_LIMIT = 1 << 20  # bytes of a stream read while waiting for its first whole event

UNREADABLE = ("bad_gateway", "The upstream sent an answer the gateway could not read.", "upstream_malformed")
CUT_SHORT = (
    "bad_gateway",
    "The upstream connection was lost before the answer was complete.",
    "upstream_disconnected",
)


@dataclass(slots=True)
class Outcome:
    """The response to relay (2xx or a final error), with what it took to get it.

    `body` is an error answer's body; for a 2xx answer, the whole JSON body, or the stream's
    first bytes (already read, still to be relayed).
    """

    account: Account
    response: aiohttp.ClientResponse | None
    status: int
    body: bytes | None = None
    attempts: list[Attempt] = field(default_factory=list)
    started: float = 0.0
    held: Held | None = None  # the account's own caps, held until the call settles
    doc: Any = None  # a 2xx JSON answer, parsed once when it was checked


class Unreadable(Exception):
    """A 2xx answer that is not what was asked for: an HTML page, truncated JSON, not an event stream."""


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
    expect: Expect = "json",
) -> Outcome:
    """Try the candidates in order. Returns an open response on success (the caller must release it).

    A connection error, a timeout, a retryable status, a refused credential (401/403) or a 2xx
    answer that does not start as `expect` says moves on to the next account, up to
    `max_attempts` accounts and until the monotonic `deadline`. When every attempt fails, the last
    upstream error answer is returned, or a 502/504 if none answered.
    """
    if not candidates:
        raise GatewayError(
            "unavailable", "No upstream account is available for this group right now.", code="no_upstream"
        )
    attempts: list[Attempt] = []
    last: Outcome | None = None
    failure = ("bad_gateway", "Could not reach the upstream.", "upstream_unreachable")
    started = time.perf_counter()
    if gate is not None and any_limited(candidates):
        return await _send_within_caps(
            client, candidates, build, health, max_attempts, deadline, gate, tokens, expect
        )
    tried = candidates[: max(1, max_attempts)]
    for i, account in enumerate(tried):
        if i and deadline is not None and time.monotonic() >= deadline:
            break
        final = i == len(tried) - 1
        url, headers, body = build(account)
        first_byte = account.first_byte_timeout
        timeout = client_timeout(account.connect_timeout)
        sent_at = time.perf_counter()
        resp: aiohttp.ClientResponse | None = None
        try:
            # The headers, and then a 2xx answer's whole JSON body or first event, within first_byte.
            session = client.session
            with Deadline(first_byte, client.loop):
                resp = await session.post(
                    url, data=body, headers=headers, timeout=timeout, allow_redirects=False
                )
                wait = time.perf_counter() - sent_at  # to the headers, as the affinity's speed measure
                head, doc = await read_head(resp, expect) if resp.status < 400 else (None, None)
        except asyncio.CancelledError:
            if resp is not None:
                resp.close()
            raise
        except (TimeoutError, aiohttp.ClientError, OSError, Unreadable) as exc:
            if resp is not None:
                resp.close()
            timed_out = isinstance(exc, asyncio.TimeoutError)
            unreadable = isinstance(exc, Unreadable | aiohttp.ClientResponseError)  # e.g. an unknown encoding
            reason = "timeout" if timed_out else "malformed answer" if unreadable else type(exc).__name__
            error = "malformed answer" if unreadable else type(exc).__name__
            attempts.append(Attempt(account, resp.status if resp is not None else 0, error))
            log.warning("upstream %s: %s", account.name, reason)
            if health is not None:
                health.failed(account, 0, None, reason)
            if timed_out:
                failure = ("timeout", "The upstream did not answer in time.", "upstream_timeout")
            elif unreadable:
                failure = UNREADABLE
            elif resp is not None:
                failure = CUT_SHORT
            else:
                failure = ("bad_gateway", "Could not reach the upstream.", "upstream_unreachable")
            continue
        if resp.status < 400:
            attempts.append(Attempt(account, resp.status))
            if health is not None:
                health.succeeded(account, wait)
            return Outcome(account, resp, resp.status, body=head, attempts=attempts, started=started, doc=doc)
        try:
            with Deadline(max(first_byte, account.idle_timeout), client.loop):
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


@functools.lru_cache(maxsize=256)
def client_timeout(connect: float) -> aiohttp.ClientTimeout:
    """aiohttp's timeouts for an account: a frozen value, built once per distinct setting.

    Only the connect limit is aiohttp's. Reads are limited by the caller (a Deadline to the first
    bytes, an IdleWatch between a stream's chunks): aiohttp's sock_read re-arms a timer on every
    packet received, some 1.5% of a proxied call's instructions.
    """
    return aiohttp.ClientTimeout(total=None, sock_connect=connect)


async def _send_within_caps(
    client: UpstreamClient,
    candidates: list[Account],
    build: RequestBuilder,
    health: HealthReport | None,
    max_attempts: int,
    deadline: float | None,
    gate: AccountGate,
    tokens: int,
    expect: Expect,
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
            outcome = await send(client, [account], build, health, 1, expect=expect)
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


async def read_head(resp: aiohttp.ClientResponse, expect: Expect) -> tuple[bytes, Any]:
    """The start of an answer, checked before the call commits to it: the whole body when it is
    JSON, else the stream's bytes up to its first whole event (SSE) or first bracket (array).

    Raises Unreadable for an answer that cannot be what was asked for, whatever its content type
    says: a redirect, an HTML page, truncated JSON, or a body that is no event stream. A JSON
    answer comes back parsed too, so that nothing parses it again.
    """
    if not 200 <= resp.status < 300:
        raise Unreadable(f"HTTP {resp.status}")
    if expect == "json":
        data = await resp.read()
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise Unreadable("not JSON") from None
        if not isinstance(doc, dict | list):
            raise Unreadable("not a JSON object")
        return data, doc
    head = await resp.content.readany()  # usually the first event and more: often the whole stream
    while head and len(head) < HEAD_LIMIT:
        if expect == "array":
            if head.strip():
                break
        elif head.find(b"\n\n") >= 0 or head.find(b"\r\n\r\n") >= 0:
            break
        chunk = await resp.content.readany()
        if not chunk:
            break
        head += chunk
    # Not a copy of the whole head (often the whole stream) when it starts as it should.
    start = head.lstrip() if head[:1].isspace() else head
    if expect == "array":
        if not start.startswith((b"[", b"{")):
            raise Unreadable("not a JSON array")
        return head, None
    # The first whole event is parsed (once per call); the relay's guard checks the rest by shape.
    lf = head.find(b"\n\n")
    end = lf + 2 if lf >= 0 else 0
    if head.find(b"\r") >= 0:  # else a CRLF search would scan the whole head for nothing
        crlf = head.find(b"\r\n\r\n")
        if crlf >= 0 and (not end or crlf + 4 < end):
            end = crlf + 4
    if end:
        bad = not well_formed(head[:end])  # exactly the first event
    elif len(head) >= HEAD_LIMIT:  # a huge first event, still coming: judge its first line
        bad = not start.startswith(SSE_FIELDS)
    else:  # the stream ended before a blank line: judge what there is
        bad = not well_formed(head)
    if not start or bad:
        raise Unreadable("not an event stream")
    return head, None


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
    """Remove what must never reach a client: the credential and the upstream's address.

    The address goes in every form an error message may print it: `host:port`, the bare host,
    and the `('127.0.0.1', 8443)` tuple that socket errors show.
    """
    if account.credential:
        text = text.replace(account.credential, "[redacted]")
    url = urlsplit(account.base_url)
    if url.netloc:
        text = text.replace(url.netloc, "upstream")
    if url.hostname:
        try:
            port = url.port or (443 if url.scheme == "https" else 80)
        except ValueError:
            port = None
        then_port = rf"(?:'?\s*[:,]\s*{port}\b)?" if port else ""
        text = re.sub(rf"\[?{re.escape(url.hostname)}\]?{then_port}", "upstream", text, flags=re.IGNORECASE)
    return re.sub(r"(sk|key|AIza)[-_A-Za-z0-9]{16,}", "[redacted]", text)
