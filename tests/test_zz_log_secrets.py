"""No log of the whole run shows a credential: the gateways', the CLI's stderr, and this process's own."""

from __future__ import annotations

import logging
import secrets

import pytest

from tests.conftest import LOGGED_SECRETS, UPSTREAM_SECRET
from tests.log_scan import Leak, log_files, scan_files, scan_lines
from torouter.store.keys import new_key


def test_the_scanner_finds_each_kind_of_leak_and_passes_clean_lines(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    key = new_key()
    planted = [
        f"chat from {key} answered",
        "upstream said: Incorrect API key provided: sk-tr-****wxyz",  # the gateway's mask: allowed
        "key sk-tr-AbCdEf (display prefix) revoked",  # allowed
        f"sealed gAAAAAB{secrets.token_urlsafe(60)}",
        "headers={'authorization': 'Bearer abcdefghijklmnopqrstuvwx'}",
        "x-goog-api-key: AIzaSyA-1234567890abcdefghij",
        "GET /v1beta/models?key=AIzaSyA-1234567890abcdefghij",
        "connecting to postgresql+asyncpg://torouter:hunter2hunter2@db/torouter",
        f"calling with {UPSTREAM_SECRET}",
        "Give the admin token: Authorization: Bearer <admin_token>.",  # a placeholder, not a token
    ]
    leaks = scan_lines(planted, "planted", [UPSTREAM_SECRET])
    assert {leak.where for leak in leaks} == {f"planted:{n}" for n in (1, 4, 5, 6, 7, 8, 9)}, leaks
    kinds = {leak.kind for leak in leaks}
    assert {"ToRouter API key", "Fernet token", "authorization header", "api-key header"} <= kinds
    assert {"key in a query string", "password in a URL", "a secret the tests set"} <= kinds
    assert all(key not in str(leak) and UPSTREAM_SECRET not in str(leak) for leak in leaks)

    # And from a file, as the last test reads them: outside basetemp, so that this plant is not a hit there.
    outside = tmp_path_factory.getbasetemp().parent / f"planted-{secrets.token_hex(4)}.log"
    try:
        outside.write_text("started\n" + planted[0] + "\n")
        assert scan_files([outside]) == [Leak(f"{outside}:2", "ToRouter API key", f"{key[:4]}… (49 chars)")]
    finally:
        outside.unlink()


@pytest.mark.run_last
def test_no_log_line_of_the_run_shows_a_key_or_credential(tmp_path_factory: pytest.TempPathFactory) -> None:
    basetemp = tmp_path_factory.getbasetemp()
    for handler in logging.getLogger().handlers:
        handler.flush()
    files = log_files(basetemp)
    assert basetemp / "run-logs" / "pytest-process.log" in files  # conftest's handler is in place
    leaks = scan_files(files, LOGGED_SECRETS)
    listing = "\n".join(str(leak) for leak in leaks[:100])
    assert not leaks, f"{len(leaks)} credentials in {len(files)} log files under {basetemp}:\n{listing}"
