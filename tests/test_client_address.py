"""The caller's address: X-Forwarded-For counts only from a proxy in forwarded_allow_ips."""

from __future__ import annotations

import pytest

from torouter.client_address import ClientAddress


def scope(peer: str | None, *forwarded: str) -> dict:
    headers = [(b"host", b"gw"), *((b"x-forwarded-for", f.encode()) for f in forwarded)]
    return {"type": "http", "client": (peer, 5000) if peer else None, "headers": headers}


@pytest.mark.parametrize(
    ("trusted", "request_scope", "expected"),
    [
        ("127.0.0.1", scope("127.0.0.1", "10.1.2.3"), "10.1.2.3"),  # the default proxy: loopback
        ("127.0.0.1", scope("127.0.0.1"), "127.0.0.1"),  # no header: the peer itself
        ("127.0.0.1", scope("192.0.2.7", "10.1.2.3"), "192.0.2.7"),  # an untrusted peer's header
        ("192.0.2.7", scope("192.0.2.7", "10.1.2.3"), "10.1.2.3"),
        ("192.0.2.0/24", scope("192.0.2.7", "10.1.2.3"), "10.1.2.3"),  # a trusted network
        ("*", scope("198.51.100.9", "10.1.2.3"), "10.1.2.3"),
        # A chain: the right-most address that is not itself a trusted proxy is the client.
        ("127.0.0.1, 10.0.0.2", scope("127.0.0.1", "203.0.113.5, 10.0.0.9, 10.0.0.2"), "10.0.0.9"),
        ("127.0.0.1", scope("127.0.0.1", "203.0.113.5", "10.0.0.9"), "10.0.0.9"),  # two headers
        ("", scope("127.0.0.1", "10.1.2.3"), "127.0.0.1"),  # trust no proxy at all
        ("127.0.0.1", scope(None), "unknown"),
    ],
)
def test_the_address_is_the_one_uvicorn_would_have_put_in_the_scope(
    trusted: str, request_scope: dict, expected: str
) -> None:
    before = dict(request_scope)
    assert ClientAddress(trusted)(request_scope) == expected
    assert request_scope == before  # the request's own scope is left as it was


def test_unset_means_uvicorns_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    assert ClientAddress(None)(scope("127.0.0.1", "10.1.2.3")) == "10.1.2.3"
    assert ClientAddress(None)(scope("192.0.2.7", "10.1.2.3")) == "192.0.2.7"
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "192.0.2.7")
    assert ClientAddress(None)(scope("192.0.2.7", "10.1.2.3")) == "10.1.2.3"
    assert ClientAddress(None)(scope("127.0.0.1", "10.1.2.3")) == "127.0.0.1"
