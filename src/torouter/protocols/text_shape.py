"""Read a stream's text events by their bytes, once one of them has been read in full.

A vendor writes every text delta of a stream alike: the same fields in the same order with the
same values, only the text differs (OpenAI adds an `obfuscation` field of random letters). An
event whose bytes are those of one read in full as plain text, with another JSON string in the
text's place, reads the same way with that string as its text: the tokens around it are the
same. So most of a stream is read with two comparisons and the parse of one string, where a
full read parses every field of every event into objects, which was the largest part of a
translated stream's cost.
"""

from __future__ import annotations

from itertools import repeat
from operator import getitem

import orjson

from torouter import hub

_BACKSLASH = 92
_WINDOW = 64  # events looked at in one go: a run is read in windows, so a short one costs little


def string_end(data: bytes, start: int) -> int:
    """Where the JSON string that opens at `start` ends (just past its closing quote), or -1."""
    end = data.find(b'"', start + 1)
    while end > 0 and data[end - 1] == _BACKSLASH:
        run = 1  # an even run of backslashes escapes itself, not the quote
        while data[end - 1 - run] == _BACKSLASH:
            run += 1
        if run % 2 == 0:
            break
        end = data.find(b'"', end + 1)
    return end + 1 if end > 0 else -1


class TextShape:
    """The bytes around the text of the last event a decoder read in full as plain text.

    `marker` is what comes right before the text (`"delta":{"content":` for OpenAI chat); the
    text must end its object, so the object holds nothing else after it. `padding` names a field
    that may end the event with a value of letters and digits that differs from event to event.
    The decoder calls `learn` after reading a plain-text event in full, `forget` after any other,
    so a shape only ever stands for an event read in the decoder's present state.
    """

    __slots__ = ("_end", "_head", "_marker", "_padding", "_tail")

    def __init__(self, marker: bytes, padding: bytes = b"") -> None:
        self._marker = marker
        self._padding = padding
        self._head: bytes | None = None
        self._tail = b""  # from the text's closing quote to the padding field, or to the end
        self._end: bytes | None = None  # after the padding field's value, when the event has one

    def forget(self) -> None:
        self._head = None

    def learn(self, event: bytes, text: str) -> None:
        """`event` was read in full as holding `text` and nothing else."""
        self._head = None
        at = event.find(self._marker)
        if at < 0 or event.find(self._marker, at + 1) >= 0:
            return  # none, or more than one: which is the text's is not known here
        start = at + len(self._marker)
        end = string_end(event, start) if event.startswith(b'"', start) else -1
        if end < 0 or not event.startswith(b"}", end):
            return
        try:
            if orjson.loads(event[start:end]) != text:
                return
        except orjson.JSONDecodeError:
            return
        tail, rest = event[end:], None
        if self._padding:
            cut = tail.rfind(self._padding)
            if cut >= 0:
                rest = self._padding_end(tail, cut)
                if rest is not None:
                    tail = tail[:cut]
        self._head, self._tail, self._end = event[:start], tail, rest

    def texts(self, events: list[bytes], start: int) -> list[str]:
        """The texts of the events from `start` on that are shaped as the one learnt, up to the
        first that is not. Without a padding field, a run of them is read in a few C-level
        passes: their heads and tails compared all at once, the texts sliced out by one map and
        parsed with one JSON parse. A run that does not parse so is read event by event."""
        head = self._head
        if head is None:
            return []
        if self._end is not None:
            return self._one_by_one(events, start)
        tail = self._tail
        found: list[str] = []
        while start < len(events):
            window = events[start : start + _WINDOW]
            heads = list(map(bytes.startswith, window, repeat(head)))
            tails = list(map(bytes.endswith, window, repeat(tail)))
            heads.append(False)
            tails.append(False)
            n = min(heads.index(False), tails.index(False))
            if not n:
                break
            cut = repeat(slice(len(head), -len(tail)))
            try:
                texts = orjson.loads(b"[" + b",".join(map(getitem, window[:n], cut)) + b"]")
            except orjson.JSONDecodeError:
                texts = None
            # One string each, none empty: else some piece is not a text, and only a reading
            # event by event tells which.
            if texts is None or not (len(texts) == n and set(map(type, texts)) == {str} and all(texts)):
                return found + self._one_by_one(events, start)
            found += texts
            if n < len(window):
                break
            start += n
        return found

    def _one_by_one(self, events: list[bytes], start: int) -> list[str]:
        found: list[str] = []
        for event in events[start:]:
            text = self.text(event)
            if text is None:
                break
            found.append(text)
        return found

    def text(self, event: bytes) -> str | None:
        """The text of an event shaped as the one learnt, or None: then read it in full."""
        head = self._head
        if head is None or not event.startswith(head):
            return None
        tail = self._tail
        if self._end is None:
            if not event.endswith(tail):
                return None
            end = len(event) - len(tail)
        else:
            cut = event.rfind(self._padding)
            if cut < 0 or self._padding_end(event, cut) != self._end:
                return None
            end = cut - len(tail)
            if end <= len(head) or not event.startswith(tail, end):
                return None
        try:
            text = orjson.loads(event[len(head) : end])
        except orjson.JSONDecodeError:
            return None
        return text if type(text) is str and text else None

    def _padding_end(self, data: bytes, cut: int) -> bytes | None:
        """What follows the value of the padding field at `cut`, when that value is letters and
        digits and the field ends the object; else None."""
        start = cut + len(self._padding)
        close = data.find(b'"', start)
        value = data[start:close]
        if close < 0 or not (value.isalnum() and value.isascii()) or not data.startswith(b'"}', close):
            return None
        rest = data[close:]
        return rest if rest.rstrip(b"\r\n") == b'"}' else None


class ShapedReader:
    """What the OpenAI chat and Anthropic stream decoders share: a block's events read by their
    TextShape where they are alike, as runs, and in full (`_event`) where they are not."""

    __slots__ = ()
    _shape: TextShape
    _text_index: int  # the hub index of the block the shape's texts belong to
    runs: bool  # True: a run comes as one TextRun, for an encoder that writes them whole

    def _event(self, raw: bytes, out: list[hub.Event]) -> None:
        raise NotImplementedError

    def _reading_ended(self) -> bool:
        """Nothing more is to be read from the block."""
        return False

    def _read_events(self, raws: list[bytes], out: list[hub.Event]) -> None:
        shape = self._shape
        i = 0
        while i < len(raws):
            texts = shape.texts(raws, i)  # most of a stream: text events alike, as a run
            if texts:
                if self.runs:
                    out.append(hub.TextRun(self._text_index, texts))
                else:
                    out.extend(hub.text_deltas(hub.TextRun(self._text_index, texts)))
                i += len(texts)
                if i == len(raws):
                    return
            self._event(raws[i], out)
            if self._reading_ended():
                return
            i += 1
