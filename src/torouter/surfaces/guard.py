"""What a pass-through stream must not relay: broken events, and the upstream's own secrets."""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from torouter.catalog import Account
from torouter.protocols.sse import EventSplitter, first_misshapen, split_events, well_formed
from torouter.upstreams.call import scrub


class EventGuard:
    """Lets only whole, well-formed SSE events through to a pass-through tap.

    An event is held until its blank line comes (a client cannot use part of one anyway). At the
    first event that is not SSE with JSON data, such as truncated JSON or an HTML page, the
    stream is cut (`broken`), so the relay can end it with an error event. An error event that
    names the account's credential or the upstream's host gets them scrubbed.
    """

    __slots__ = ("_account", "_needles", "_splitter", "broken", "errors")

    def __init__(self, account: Account) -> None:
        self._splitter = EventSplitter()
        self._account = account
        self._needles = secrets_of(account.credential, account.base_url)
        self.broken = False
        self.errors = True  # the last block taken holds the word "error": a tap must look for them

    def take(self, chunk: bytes) -> bytes:
        """The whole events this chunk completes, up to the first malformed one."""
        if self.broken:
            return b""
        block = self._splitter.take(chunk)
        if not block:
            return b""
        bad = first_misshapen(block)
        if bad >= 0:
            self.broken = True
            block = block[:bad]
        # rfind, not `in` (see protocols.sse) nor find: on JSON text it skips ahead twice as far.
        self.errors = block.rfind(b"error") >= 0
        return self._clean(block) if self.errors else block

    def rest(self) -> bytes:
        """At the end of the stream: a last event with no blank line after it, if well formed."""
        rest = self._splitter.flush()
        if self.broken or not rest.strip():
            return b""
        if not well_formed(rest, strict=False):
            self.broken = True
            return b""
        self.errors = rest.rfind(b"error") >= 0
        return self._clean(rest) if self.errors else rest

    def _clean(self, block: bytes) -> bytes:
        # Only error events are scrubbed: the search for that word (the caller's) spares one per secret.
        if not any(n in block for n in self._needles):
            return block
        events = list(split_events(block)) or [block]
        return b"".join(
            scrub(e.decode("utf-8", "replace"), self._account).encode() if b"error" in e else e
            for e in events
        )


@functools.lru_cache(maxsize=1024)
def secrets_of(credential: str, base_url: str) -> tuple[bytes, ...]:
    """What an error event must not show: the credential and the upstream's host (parsed once)."""
    return tuple(n.encode() for n in (credential, urlsplit(base_url).hostname) if n)
