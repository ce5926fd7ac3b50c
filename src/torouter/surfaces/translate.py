"""Cross-protocol calls: decode the client's request to the hub, encode it for the platform, and
turn the upstream's answer or stream back into the client's protocol as it arrives."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from torouter import hub
from torouter.catalog import Account
from torouter.errors import GatewayError
from torouter.protocols.faults import unreadable
from torouter.routing.models import upstream_model_for
from torouter.surfaces.asgi import JSON, Send
from torouter.surfaces.call import Call
from torouter.surfaces.oneshot import read_answer
from torouter.surfaces.passthrough import Wire, open_upstream, record_cut
from torouter.surfaces.relay import relay_stream
from torouter.upstreams.call import scrub
from torouter.upstreams.platforms import auth_headers, url_for

log = logging.getLogger("torouter.translate")


class StreamDecoder(Protocol):
    usage: hub.Usage | None

    def feed(self, chunk: bytes) -> list[hub.Event]: ...

    def finish(self) -> list[hub.Event]: ...


class StreamEncoder(Protocol):
    def encode(self, event: hub.Event) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Codec:
    """One wire protocol's hub codec, as the translating path uses it."""

    decode_request: Callable[[dict[str, Any]], hub.Request]
    encode_request: Callable[[hub.Request, str], dict[str, Any]]
    decode_response: Callable[[dict[str, Any]], hub.Response]
    encode_response: Callable[[hub.Response, str], dict[str, Any]]
    stream_decoder: Callable[[], StreamDecoder]
    stream_encoder: Callable[[hub.Request, str], StreamEncoder]
    # What a whole answer says it used, or None when it says nothing: then the usage is estimated.
    response_usage: Callable[[dict[str, Any]], hub.Usage | None]


@dataclass(frozen=True, slots=True)
class Platform:
    """How to reach a platform's protocol: its codec, endpoints and fixed headers."""

    codec: Codec
    path: str
    headers: dict[str, str]
    stream_path: str | None = None  # where the platform streams, when that is another URL (Gemini)


class TranslatingTap:
    """A stream tap that re-encodes: upstream bytes -> hub events -> the client's protocol.

    An upstream error's message is scrubbed of the account's credential and address on the way.
    """

    __slots__ = ("_account", "_decoder", "_encoder", "done", "ended", "error", "usage")

    def __init__(
        self, decoder: StreamDecoder, encoder: StreamEncoder, account: Account | None = None
    ) -> None:
        self._decoder = decoder
        self._encoder = encoder
        if getattr(encoder, "writes_runs", False) and hasattr(decoder, "runs"):
            decoder.runs = True  # type: ignore[attr-defined]  # runs of text go to the encoder whole
        self._account = account
        self.usage: hub.Usage | None = None
        self.done = False
        self.ended = False  # an error event went out: the decoder reads nothing more
        self.error: str | None = None

    def _encode(self, events: list[hub.Event]) -> bytes:
        kinds = set(map(type, events))
        if hub.StreamError in kinds:
            return self._encode_each(events)
        # Most reads: no error to scrub first, so the encoder runs over them in one C-level loop.
        # list.extend keeps what it took before an exception: the events before a fault go out.
        out: list[bytes] = []
        try:
            out.extend(map(self._encoder.encode, events))
        except Exception as exc:  # a decoded event of a shape the encoder cannot write
            self._fault(exc, out)
            self.done = self.done or hub.MessageStop in set(map(type, events[: len(out) - 1]))
        else:
            self.done = self.done or hub.MessageStop in kinds
        self.usage = self._decoder.usage
        return b"".join(out)

    def _encode_each(self, events: list[hub.Event]) -> bytes:
        """Event by event, for a read with an error event: its message is scrubbed first."""
        encode = self._encoder.encode
        out: list[bytes] = []
        try:
            for event in events:
                if isinstance(event, hub.StreamError):
                    self.error = event.code or event.kind
                    self.ended = True
                    if self._account is not None:
                        event = hub.StreamError(event.kind, scrub(event.message, self._account), event.code)
                elif isinstance(event, hub.MessageStop):
                    self.done = True
                out.append(encode(event))
        except Exception as exc:
            if self.ended:  # the error event itself: the relay's net takes it
                raise
            self._fault(exc, out)
        self.usage = self._decoder.usage
        return b"".join(out)

    def _fault(self, exc: Exception, out: list[bytes]) -> None:
        """The client's error event after what was encoded before the event it could not write."""
        fault = unreadable(exc, "encode")
        self.error, self.ended = fault.code, True
        out.append(self._encoder.encode(fault))

    def feed(self, chunk: bytes, errors: bool = True) -> bytes:
        return self._encode(self._decoder.feed(chunk))

    def error_event(self, err: GatewayError) -> bytes:
        """A failure the relay saw, said by the client's encoder, which knows what it has sent."""
        return self._encode([hub.StreamError(err.kind, err.message, err.code)])

    def flush(self) -> bytes:
        return self._encode(self._decoder.finish())


async def translate(
    call: Call,
    wire: Wire,
    client: Codec,
    send: Send,
    request: hub.Request,
    target: str,
    accounts: list[Account],
    platform_of: Callable[[str], Platform],
) -> None:
    """Run one translated call. `request` is the client's call decoded to the hub."""
    bodies: dict[tuple[str, str], bytes] = {}

    def build(account: Account) -> tuple[str, dict[str, str], bytes]:
        platform = platform_of(account.platform)
        upstream_model = upstream_model_for(account, target)
        body = bodies.get((account.platform, upstream_model))
        if body is None:
            request.model = upstream_model
            body = orjson.dumps(platform.codec.encode_request(request, account.platform))
            bodies[(account.platform, upstream_model)] = body
        headers = auth_headers(account)
        headers.update(platform.headers)
        path = platform.stream_path if request.stream and platform.stream_path else platform.path
        return url_for(account, path, upstream_model), headers, body

    outcome = await open_upstream(call, wire, send, accounts, target, build)
    if outcome is None:
        return
    account, resp = outcome.account, outcome.response
    assert resp is not None

    platform = platform_of(account.platform)
    headers = [(wire.request_id_header.encode(), call.request_id.encode()), *call.limit_headers()]
    if call.stream:
        tap = TranslatingTap(
            platform.codec.stream_decoder(), client.stream_encoder(request, call.model), account
        )
        try:
            result = await relay_stream(
                send,
                outcome,
                headers,
                tap,
                tap.error_event,
                wire.stream_content_type,
                call.receive,
                loop=call.gw.client.loop,
            )
        except asyncio.CancelledError:
            record_cut(call, tap.usage)
            raise
        failed = result.error or tap.error
        status = 499 if result.error == "client_disconnected" else 502 if failed else 200
        call.relayed = result.chunks
        call.record(status, result.usage, result.first_byte_at, result.error or tap.error)
        return

    def convert(doc: Any) -> tuple[bytes, hub.Usage | None]:
        # Encoding is part of reading: a field of a type no codec expects may only fail there.
        body = orjson.dumps(client.encode_response(platform.codec.decode_response(doc), call.model))
        return body, platform.codec.response_usage(doc) if isinstance(doc, dict) else None

    answer = await read_answer(call, wire, send, outcome, convert)
    if answer is None:
        return
    body, usage = answer
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", JSON), (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})
    if usage is None:  # the upstream said nothing of its usage: estimated from the answer
        call.relayed = [body]
    call.record(200, usage)
