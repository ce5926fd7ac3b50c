"""The soak test's calls: which routes and faults, how each call is made, and how its end is judged.

Hang-ups and faults go to each route's "scripted" group, whose upstream account has a credential
of its own: a step scripted in the emulator for that credential (and the call's upstream path and
stream flag) is met only by calls of the same kind, so plain calls never take a fault meant for
another. Two calls of the same kind may swap steps; each call's outcome is judged by what the
client saw, not by what was planned.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

# How the load is mixed (the failover route is never scripted).
HANGUP_MID_STREAM = 0.10  # of streaming calls: read the first bytes, then close the connection
HANGUP_EARLY = 0.02  # of the other calls: give up before the (delayed) answer's headers
FAULTED = 0.15  # of the other calls: an upstream fault, or an odd but valid delivery
STREAMED = 0.5  # of calls on kinds that can stream
GEMINI_ARRAY = 0.2  # of Gemini streams: the JSON-array form (no ?alt=sse)
EARLY_HANGUP_AFTER = 0.3  # seconds the client waits before hanging up early
CALL_TIMEOUT = 30.0

WORDS = " ".join(f"w{i}" for i in range(24))
NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
SCRIPTED_TIMEOUTS = {"connect": 2, "first_byte": 1.5, "idle": 0.8}  # the scripted accounts'
# fault name -> (scripted step, the calls it fits: "stream", "json" or "any")
FAULTS: dict[str, tuple[dict[str, Any], str]] = {
    "http-500": ({"status": 500, "error": {"message": "soak: internal"}}, "any"),
    "http-503": ({"status": 503}, "any"),
    "http-529": ({"status": 529}, "any"),
    "http-429": ({"status": 429, "headers": {"retry-after": "1"}}, "any"),
    "reset-before-headers": ({"drop_before_headers": True}, "any"),
    "cut-after-headers": ({"drop_after": 0}, "any"),
    "html-502": ({"raw": {"status": 502, "body": NGINX_502, "content_type": "text/html"}}, "any"),
    "html-200": ({"raw": {"status": 200, "body": "<html>It works</html>", "content_type": "text/html"}}, "any"),
    "malformed-first": ({"malformed_at": 0}, "any"),
    "no-first-byte": ({"delay": 2.0}, "any"),  # past first_byte
    "truncated-json": ({"drip": 40, "drop_after": 2}, "json"),
    "slow-drip": ({"drip": 16, "chunk_delay": 0.4}, "json"),  # the whole body misses first_byte
    "reset-mid-stream": ({"text": WORDS, "drop_after": 4, "chunk_delay": 0.02}, "stream"),
    "malformed-mid-stream": ({"text": WORDS, "malformed_at": 4, "chunk_delay": 0.02}, "stream"),
    "idle-mid-stream": ({"text": WORDS, "chunk_delay": 1.2}, "stream"),  # past idle
    "gzip": ({"content_encoding": "gzip"}, "any"),
    "drip": ({"drip": 24, "chunk_delay": 0.002}, "any"),
    "late-end": ({"tail_delay": 0.3}, "stream"),
}  # fmt: skip
SLOW_STREAM = {"text": WORDS, "chunk_delay": 0.05}  # what a mid-stream hang-up leaves
LATE_HEADERS = {"delay": 1.0}  # what an early hang-up leaves
# A bounded set of conversations, so that per-conversation state (session pins) reaches its
# steady size during the warm-up instead of growing with the call count.
PROMPTS = [f"soak prompt {i}: say something short" for i in range(64)]
EMBED_MODEL = "text-embedding-3-small"


@dataclass(frozen=True, slots=True)
class Route:
    """A client protocol in front of a platform; `kinds` are the calls made on it."""

    name: str
    client: str  # openai, anthropic or gemini
    platform: str
    model: str
    kinds: tuple[str, ...]  # chat, responses, embeddings, messages, generate
    models: dict[str, str] = field(default_factory=dict)  # the group's mapping (translated routes)
    failover: bool = False  # a dead account comes first; no scripted group

    @property
    def credential(self) -> str:
        """The scripted account's key, which its steps match on."""
        return f"sk-soak-{self.name}-scripted"


ROUTES = (
    Route("oa", "openai", "openai", "gpt-4o-mini", ("chat", "responses", "embeddings")),
    Route("an", "anthropic", "anthropic", "claude-sonnet-4-5", ("messages",)),
    Route("ge", "gemini", "gemini", "gemini-2.5-flash", ("generate",)),
    Route("oa-an", "openai", "anthropic", "gpt-4o-mini", ("chat", "responses"), {"gpt-*": "claude-sonnet-4-5"}),
    Route("an-ge", "anthropic", "gemini", "claude-sonnet-4-5", ("messages",), {"claude-*": "gemini-2.5-flash"}),
    Route("ge-oa", "gemini", "openai", "gemini-2.5-flash", ("generate",), {"gemini-*": "gpt-4o-mini"}),
    Route("emb-ge", "openai", "gemini", EMBED_MODEL, ("embeddings",), {"text-embedding-*": "gemini-embedding-001"}),
    Route("failover", "openai", "openai", "gpt-4o-mini", ("chat",), failover=True),
)  # fmt: skip
SURFACES = [(route, kind) for route in ROUTES for kind in route.kinds]


@dataclass(slots=True)
class Plan:
    route: Route
    kind: str
    stream: bool
    action: str = "plain"  # plain, a fault name, hangup-mid-stream or hangup-early
    step: dict[str, Any] | None = None
    array: bool = False  # a Gemini stream without ?alt=sse

    @property
    def surface(self) -> str:
        mode = "" if not self.stream else "+array" if self.array else "+stream"
        return f"{self.route.name}:{self.kind}{mode}"

    @property
    def group(self) -> str:
        return self.route.name if self.step is None else f"{self.route.name}-scripted"

    @property
    def category(self) -> str:
        return (
            self.action if self.action in ("plain", "fill", "hangup-mid-stream", "hangup-early") else "fault"
        )

    def scripted(self) -> dict[str, Any]:
        """The step, matched to calls of this kind on the route's scripted account."""
        assert self.step is not None
        path = upstream_path(self.kind, self.route.platform, self.stream)
        return {
            **self.step,
            "match": {"credential": self.route.credential, "stream": self.stream, "path": path},
        }


def choose(rng: random.Random) -> Plan:
    route, kind = rng.choice(SURFACES)
    stream = kind != "embeddings" and rng.random() < STREAMED
    array = stream and route.client == "gemini" and rng.random() < GEMINI_ARRAY
    plan = Plan(route, kind, stream, array=array)
    if route.failover:
        return plan
    if stream and rng.random() < HANGUP_MID_STREAM:
        plan.action, plan.step = "hangup-mid-stream", SLOW_STREAM
        return plan
    r = rng.random()
    if r < HANGUP_EARLY:
        plan.action, plan.step = "hangup-early", LATE_HEADERS
    elif r < HANGUP_EARLY + FAULTED:
        fits = "stream" if stream else "json"
        plan.action = rng.choice([name for name, (_, kinds) in FAULTS.items() if kinds in (fits, "any")])
        plan.step = FAULTS[plan.action][0]
    return plan


def upstream_path(kind: str, platform: str, stream: bool) -> str:
    """A fragment of the path the gateway calls upstream for this kind of call."""
    if platform == "gemini":
        if kind == "embeddings":
            return "mbedContent"  # embedContent and batchEmbedContents
        return ":streamGenerateContent" if stream else ":generateContent"
    if platform == "anthropic":
        return "/v1/messages"
    return {"responses": "/responses", "embeddings": "/embeddings"}.get(kind, "/chat/completions")


def request_for(plan: Plan, key: str, prompt: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(path, headers, body) of the call in its client's protocol."""
    model, stream = plan.route.model, {"stream": True} if plan.stream else {}
    messages = [{"role": "user", "content": prompt}]
    if plan.route.client == "anthropic":
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
        return "/v1/messages", headers, {"model": model, "max_tokens": 64, "messages": messages} | stream
    if plan.route.client == "gemini":
        action = "streamGenerateContent" if plan.stream else "generateContent"
        query = "?alt=sse" if plan.stream and not plan.array else ""
        body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
        return f"/v1beta/models/{model}:{action}{query}", {"x-goog-api-key": key}, body
    headers = {"authorization": f"Bearer {key}"}
    if plan.kind == "embeddings":
        return "/v1/embeddings", headers, {"model": EMBED_MODEL, "input": [prompt]}
    if plan.kind == "responses":
        return "/v1/responses", headers, {"model": model, "input": prompt, "max_output_tokens": 64} | stream
    return "/v1/chat/completions", headers, {"model": model, "max_tokens": 64, "messages": messages} | stream


# What ends a stream well, in each protocol: chat, Anthropic, Responses, Gemini.
TERMINAL = (b"[DONE]", b"message_stop", b"response.completed", b"response.incomplete", b"finishReason")


def judge(status: int, body: bytes, stream: bool) -> str:
    """How a call that ran to the end of its body ended: ok, error, stream-error, unterminated or bad-body."""
    if status >= 400:
        return "error"
    if not stream or body.lstrip().startswith(b"["):  # a whole JSON answer, or a Gemini array stream
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            return "bad-body"
        items = doc if isinstance(doc, list) else [doc]
        if any(isinstance(i, dict) and i.get("error") for i in items):
            return "stream-error"
        return "ok" if not stream or b"finishReason" in body else "unterminated"
    for line in body.replace(b"\r\n", b"\n").split(b"\n"):
        if not line.startswith(b"data:") or line[5:].strip() == b"[DONE]":
            continue
        try:
            data = orjson.loads(line[5:])
        except orjson.JSONDecodeError:
            return "bad-body"
        if isinstance(data, dict) and (data.get("error") or data.get("type") in ("error", "response.failed")):
            return "stream-error"
    return "ok" if any(t in body for t in TERMINAL) else "unterminated"


COMPLETED = frozenset({"ok", "error", "stream-error", "unterminated", "bad-body"})
# Ends a client should never see from the gateway: a stream with no end, a body that does not
# parse, a dropped connection, an answer with no request id (an unhandled exception's 500).
UNCLEAN = frozenset({"unterminated", "bad-body", "transport-error", "no-request-id"})


@dataclass(slots=True)
class Tally:
    """What the client saw, call by call, summed up."""

    planned: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    completed_by_surface: Counter[str] = field(default_factory=Counter)
    completed_ids: list[str] = field(default_factory=list)
    hung_up_ids: dict[str, str] = field(default_factory=dict)  # request id -> surface and step
    unclean: list[str] = field(default_factory=list)  # a sample of the calls that ended unclean

    def add(self, plan: Plan, outcome: str, status: int | None, request_id: str | None, note: str) -> None:
        self.planned[plan.category] += 1
        if outcome in COMPLETED and not request_id:
            outcome = "no-request-id"
        self.outcomes[outcome] += 1
        if status is not None:
            self.statuses[str(status)] += 1
        if outcome in COMPLETED and request_id:
            self.completed_ids.append(request_id)
            self.completed_by_surface[plan.surface] += 1
        elif outcome == "hung-up" and request_id:
            self.hung_up_ids[request_id] = f"{plan.surface} {plan.action}"
        if outcome in UNCLEAN and len(self.unclean) < 30:
            self.unclean.append(
                f"{outcome}: {plan.surface} {plan.action}, status {status}, id {request_id}: {note}"
            )


class Driver:
    """Runs calls against the gateway, scripting the emulator first for the ones that need it."""

    def __init__(self, gateway_url: str, emulator_url: str, keys: dict[str, str]) -> None:
        self.gateway_url = gateway_url
        self.emulator_url = emulator_url
        self.keys = keys
        self.tally = Tally()

    async def prime(self) -> None:
        """One plain call of every surface and mode: a broken set-up fails here, not minutes later."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT)) as http:
            for route, kind in SURFACES:
                for stream in (False, True) if kind != "embeddings" else (False,):
                    plan = Plan(route, kind, stream)
                    outcome, status, _, note = await self.call(http, plan, PROMPTS[0])
                    if outcome != "ok":
                        raise RuntimeError(f"priming call {plan.surface} ended {outcome} ({status}): {note}")

    async def fill(self, calls: int, concurrency: int) -> None:
        """Stored Responses answers (translated, so the gateway stores them), enough to fill the
        gateway's in-memory cache of them: it is bounded, but takes tens of thousands of mixed
        calls to fill, which a short run would mistake for a leak."""
        route = next(
            r for r in ROUTES if r.client == "openai" and r.platform != "openai" and "responses" in r.kinds
        )
        left = calls
        timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT)

        async def worker(http: aiohttp.ClientSession) -> None:
            nonlocal left
            while left > 0:
                left -= 1
                plan = Plan(route, "responses", False, action="fill")
                self.tally.add(plan, *await self.call(http, plan, PROMPTS[left % len(PROMPTS)]))

        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as http:
            await asyncio.gather(*(worker(http) for _ in range(concurrency)))

    async def phase(self, seconds: float, concurrency: int, seed: int) -> None:
        """`concurrency` workers, each calling back to back until the phase ends; then every
        connection to the gateway is closed, so an idle gateway holds none of ours."""
        deadline = time.monotonic() + seconds
        timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT)
        async with (
            aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as http,
            aiohttp.ClientSession(timeout=timeout) as control,
        ):
            rngs = [random.Random(seed * 1000 + i) for i in range(concurrency)]
            await asyncio.gather(*(self._worker(http, control, deadline, rng) for rng in rngs))

    async def _worker(
        self, http: aiohttp.ClientSession, control: aiohttp.ClientSession, deadline: float, rng: random.Random
    ) -> None:
        while time.monotonic() < deadline:
            plan = choose(rng)
            if plan.step is not None:
                script = {"steps": [plan.scripted()]}
                async with control.post(self.emulator_url + "/_emulator/script", json=script) as resp:
                    resp.raise_for_status()
            outcome, status, request_id, note = await self.call(http, plan, rng.choice(PROMPTS))
            self.tally.add(plan, outcome, status, request_id, note)

    async def call(
        self, http: aiohttp.ClientSession, plan: Plan, prompt: str
    ) -> tuple[str, int | None, str | None, str]:
        """(outcome, status, request id, note) of one call."""
        path, headers, body = request_for(plan, self.keys[plan.group], prompt)
        id_header = "request-id" if plan.route.client == "anthropic" else "x-request-id"
        early = plan.action == "hangup-early"
        status: int | None = None
        request_id: str | None = None
        try:
            async with (
                asyncio.timeout(EARLY_HANGUP_AFTER if early else None),
                http.post(self.gateway_url + path, json=body, headers=headers) as resp,
            ):
                status, request_id = resp.status, resp.headers.get(id_header)
                if early:
                    return "answered-early", status, request_id, ""  # another call took its step
                if plan.action == "hangup-mid-stream" and status < 400:
                    first = await resp.content.readany()
                    if not resp.content.at_eof():
                        resp.close()  # drops the connection: the gateway sees its client leave
                        return "hung-up", status, request_id, ""
                    data = first + await resp.read()
                else:
                    data = await resp.read()
        except TimeoutError:
            if early:
                return "hung-up", status, request_id, ""
            return "transport-error", status, request_id, "no answer within the client's timeout"
        except aiohttp.ClientError as exc:
            return "transport-error", status, request_id, f"{type(exc).__name__}: {exc}"
        return judge(status, data, plan.stream), status, request_id, data[:300].decode(errors="replace")
