"""Session affinity: the calls of one conversation go to the same account, so its prompt cache stays warm.

The session is named by the first of: Claude Code's x-claude-code-session-id header, Codex's
session_id header, the session_id inside Anthropic's metadata.user_id (Claude Code sends a JSON
string there), OpenAI's prompt_cache_key, an x-session-affinity header, or else a hash of the
system prompt and the first message. Pins are per API key and expire after `ttl` seconds idle.
They live in this process (see docs/routing.md for what that means with several workers).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import Any

import orjson

_HEADERS = (b"x-claude-code-session-id", b"session_id", b"session-id")


def session_of(headers: list[tuple[bytes, bytes]], body: Any) -> str:
    found = {name: value for name, value in headers if name in _HEADERS or name == b"x-session-affinity"}
    for name in _HEADERS:
        if found.get(name):
            return "h:" + found[name].decode("latin-1")
    if isinstance(body, dict):
        metadata = body.get("metadata")
        user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
        if isinstance(user_id, str) and "session_id" in user_id:
            try:
                session = orjson.loads(user_id).get("session_id")
            except (orjson.JSONDecodeError, AttributeError):
                session = None
            if isinstance(session, str) and session:
                return "m:" + session
        if isinstance(body.get("prompt_cache_key"), str) and body["prompt_cache_key"]:
            return "p:" + body["prompt_cache_key"]
    if found.get(b"x-session-affinity"):
        return "a:" + found[b"x-session-affinity"].decode("latin-1")
    return "c:" + _conversation_hash(body)


def _conversation_hash(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    system = body.get("system") or body.get("instructions") or body.get("systemInstruction")
    turns = body.get("messages") or body.get("input") or body.get("contents") or []
    first = turns[0] if isinstance(turns, list) and turns else turns
    return hashlib.blake2b(orjson.dumps([system, first], default=str), digest_size=12).hexdigest()


class Affinity:
    """(key id, session) -> account id, with an idle TTL and a bound on the number of pins."""

    def __init__(self, ttl: float = 3600.0, max_pins: int = 200_000) -> None:
        self.ttl = ttl
        self._max = max_pins
        self._pins: OrderedDict[tuple[int, str], tuple[int, float]] = OrderedDict()

    def pinned(self, key_id: int, session: str) -> int | None:
        entry = self._pins.get((key_id, session))
        if entry is None:
            return None
        account_id, expires = entry
        if expires <= time.time():
            del self._pins[(key_id, session)]
            return None
        return account_id

    def pin(self, key_id: int, session: str, account_id: int) -> None:
        key = (key_id, session)
        self._pins[key] = (account_id, time.time() + self.ttl)
        self._pins.move_to_end(key)
        while len(self._pins) > self._max:
            self._pins.popitem(last=False)

    def __len__(self) -> int:
        return len(self._pins)
