"""What the stream decoders and encoders say when an upstream's event cannot be read."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from torouter import hub

log = logging.getLogger("torouter.protocols")
T = TypeVar("T")


def malformed(what: str = "event") -> hub.StreamError:
    """The error that ends a stream at an event no codec can read."""
    return hub.StreamError("api_error", f"The upstream sent a malformed {what}.", "upstream_malformed")


def raised_at(exc: BaseException) -> str:
    """The file and line an exception came from: what a log may say of it. Its text may quote
    the upstream's event, and so a secret the upstream echoed."""
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    return f"{Path(frame.filename).name}:{frame.lineno}" if frame else "?"


def unreadable(exc: Exception, side: str = "decode") -> hub.StreamError:
    """An event of a shape the codec does not expect (a field of another type, say) or a bug:
    the stream ends there with `malformed()`, after all that was read before it."""
    log.warning("could not %s an upstream event: %s at %s", side, type(exc).__name__, raised_at(exc))
    return malformed()


def guarded(read: Callable[[T, list[hub.Event]], None], arg: T, events: list[hub.Event]) -> bool:
    """`read(arg, events)`, the way each stream decoder reads: False when it raised, after adding
    the malformed-event error to the events it had already decoded, which all still go out."""
    try:
        read(arg, events)
    except Exception as exc:
        events.append(unreadable(exc))
        return False
    return True
