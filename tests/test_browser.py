"""The dashboard and the Playground in a real browser: Debian's Chromium driven by Playwright.

One story, as an operator lives it: sign in, create a key, chat with it in the Playground on
the Anthropic protocol against an OpenAI group (the text arriving in pieces), find the call on
the dashboard, revoke the key, and see the Playground say so. Screenshots of every page, at a
laptop's size and a phone's, go to test-artifacts/screenshots.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import gateway_config, register_secret, wait_until_key_works
from tests.emulator_harness import EmulatorServer
from tests.gateway_harness import GatewayServer
from tests.services import required

CHROMIUM = os.environ.get("TOROUTER_CHROMIUM", "/usr/bin/chromium")
ADMIN_TOKEN = "admin-token-for-the-browser-test"
register_secret(ADMIN_TOKEN)
SHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        if required():
            pytest.fail(f"Chromium is required (TOROUTER_REQUIRE_SERVICES=1) but {CHROMIUM} is missing")
        pytest.skip(f"Chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def gateway(emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    workdir = tmp_path_factory.mktemp("browser")
    config = gateway_config(
        emulator, f"sqlite+aiosqlite:///{workdir / 'torouter.db'}", admin_token=ADMIN_TOKEN
    )
    with GatewayServer(workdir, config) as gw:
        yield gw


def shot(page: object, name: str) -> None:
    """A full-page screenshot once the page has finished loading its data."""
    page.wait_for_function("() => !document.querySelector('[data-testid=loading]')")  # type: ignore[attr-defined]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def test_an_operator_creates_a_key_chats_sees_the_usage_and_revokes_it(
    browser: object, gateway: GatewayServer, emulator: EmulatorServer
) -> None:
    context = browser.new_context(viewport=LAPTOP)  # type: ignore[attr-defined]
    page = context.new_page()
    offsite: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(gateway.url) else offsite.append(r.url))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    # Sign in: a wrong token is refused, the right one opens the overview.
    page.goto(gateway.url + "/dashboard")
    page.get_by_test_id("admin-token-input").fill("wrong")
    page.get_by_test_id("login-submit").click()
    page.get_by_test_id("login-error").wait_for()
    shot(page, "dashboard-login")
    page.get_by_test_id("admin-token-input").fill(ADMIN_TOKEN)
    page.get_by_test_id("login-submit").click()
    page.get_by_test_id("overview-totals").wait_for()

    # Create a key in the openai group; its value is shown once.
    page.get_by_test_id("nav-keys").click()
    page.get_by_test_id("create-key-button").click()
    page.get_by_test_id("key-form-group").select_option("openai")
    page.get_by_test_id("key-form-name").fill("browser-key")
    page.get_by_test_id("key-form-submit").click()
    value = page.get_by_test_id("new-key-value")
    value.wait_for()
    key = (value.input_value() if value.evaluate("e => 'value' in e") else value.inner_text()).strip()
    assert key.startswith("sk-tr-")
    shot(page, "dashboard-new-key")
    page.get_by_test_id("use-in-playground").click()
    page.get_by_test_id("new-key-close").click()
    assert page.locator('[data-testid="key-row"][data-key-name="browser-key"]').count() == 1
    shot(page, "dashboard-keys")

    # The Playground: Anthropic protocol, openai group, a stream slow enough to watch.
    emulator.script({"text": "one two three four five six seven eight", "chunk_delay": 0.25})
    page.goto(gateway.url + "/playground")
    page.get_by_test_id("key-select").select_option(key)
    page.get_by_test_id("protocol-select").select_option("anthropic")
    page.get_by_test_id("model-custom").fill("gpt-4o-mini")
    page.get_by_test_id("chat-input").fill("Count to eight, please.")
    page.get_by_test_id("send-button").click()
    answer = page.get_by_test_id("assistant-text").last
    seen: list[str] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = answer.inner_text() if answer.count() else ""
        if not seen or text != seen[-1]:
            seen.append(text)
        done = page.locator('[data-testid="chat-message"][data-role="assistant"][data-status="done"]')
        if done.count():
            break
        time.sleep(0.05)
    final = answer.inner_text()
    assert final == "one two three four five six seven eight", final
    pieces = [s for s in seen if s and s != final]
    assert len(pieces) >= 3, f"the text did not arrive in pieces: {seen}"
    assert all(final.startswith(p) for p in pieces)
    upstream = page.get_by_test_id("capture-upstream")
    upstream.wait_for()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=capture-upstream]').innerText.includes('chat/completions')"
    )
    assert "[masked]" in upstream.inner_text()
    assert emulator.requests()[-1]["path"].endswith("/chat/completions")  # translated to the openai group
    shot(page, "playground-chat")

    # The call is on the dashboard: in the usage log, and in the overview's totals.
    page.goto(gateway.url + "/dashboard")
    page.get_by_test_id("nav-usage").click()
    page.locator('[data-testid="usage-row"]').first.wait_for()
    deadline = time.monotonic() + 10
    while "browser-key" not in page.get_by_test_id("usage-table").inner_text():
        assert time.monotonic() < deadline, "the Playground call never showed in the usage log"
        page.get_by_test_id("usage-apply").click()
        time.sleep(0.3)
    shot(page, "dashboard-usage")
    page.get_by_test_id("nav-overview").click()
    calls = page.get_by_test_id("overview-total-calls")
    calls.wait_for()
    assert float(calls.get_attribute("data-value") or 0) >= 1
    shot(page, "dashboard-overview")
    for section in ("groups", "upstreams", "prices"):
        page.get_by_test_id(f"nav-{section}").click()
        page.get_by_test_id(f"section-{section}").wait_for()
        shot(page, f"dashboard-{section}")

    # Revoke it; the Playground then shows the 401 plainly.
    page.get_by_test_id("nav-keys").click()
    page.locator('[data-testid="key-row"][data-key-name="browser-key"] [data-testid="revoke-key"]').click()
    page.get_by_test_id("confirm-ok").click()
    page.wait_for_function(
        "() => document.querySelector('[data-key-name=\"browser-key\"] [data-testid=key-status]')"
        ".innerText.includes('revoked')"
    )
    page.goto(gateway.url + "/playground")
    page.get_by_test_id("key-select").select_option(key)
    page.get_by_test_id("protocol-select").select_option("anthropic")
    page.get_by_test_id("model-custom").fill("gpt-4o-mini")
    page.get_by_test_id("chat-input").fill("Still there?")
    page.get_by_test_id("send-button").click()
    error = page.locator('[data-testid="chat-error"]').last
    error.wait_for()
    assert error.get_attribute("data-status") == "401"
    assert "revoked" in error.inner_text()
    shot(page, "playground-revoked")

    assert not offsite, f"the pages loaded from elsewhere: {offsite}"
    assert not errors, errors
    context.close()


@pytest.mark.parametrize("size", ["laptop", "phone"])
def test_every_page_is_readable_on_a_laptop_and_a_phone(
    browser: object, gateway: GatewayServer, size: str
) -> None:
    viewport = LAPTOP if size == "laptop" else PHONE
    context = browser.new_context(viewport=viewport)  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(gateway.url + "/dashboard")
    page.get_by_test_id("admin-token-input").fill(ADMIN_TOKEN)
    page.get_by_test_id("login-submit").click()
    page.get_by_test_id("overview-totals").wait_for()
    for section in ("overview", "keys", "groups", "upstreams", "usage", "prices"):
        nav = page.get_by_test_id(f"nav-{section}")
        nav.click()
        page.get_by_test_id(f"section-{section}").wait_for()
        # Nothing wider than the screen except inside scrolling tables; the menu stays a bar.
        menu = page.get_by_test_id("nav").bounding_box()
        assert menu is not None and (size == "laptop" or menu["height"] < 120), menu
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{section} is {overflow}px wider than a {size} screen"
        shot(page, f"{size}-dashboard-{section}")
    page.goto(gateway.url + "/playground")
    page.get_by_test_id("chat-input").wait_for()
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the Playground is {overflow}px wider than a {size} screen"
    shot(page, f"{size}-playground")
    context.close()


def test_the_stop_button_ends_a_stream_and_the_gateway_cancels_the_upstream(
    browser: object, gateway: GatewayServer, emulator: EmulatorServer
) -> None:
    key = gateway.create_key("openai", "--name", "stopper")
    wait_until_key_works(gateway.url, key)  # the gateway loads new keys within a second
    emulator.script({"text": " ".join(f"w{i}" for i in range(60)), "chunk_delay": 0.2})
    context = browser.new_context(viewport=LAPTOP)  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(gateway.url + "/playground")
    page.get_by_test_id("key-input").fill(key)
    page.get_by_test_id("key-use").click()
    page.get_by_test_id("protocol-select").select_option("openai-chat")
    page.get_by_test_id("model-custom").fill("gpt-4o-mini")
    page.get_by_test_id("chat-input").fill("Go on for a while.")
    page.get_by_test_id("send-button").click()
    page.wait_for_function(
        "() => (document.querySelector('[data-testid=assistant-text]')?.innerText || '').includes('w3')"
    )
    page.get_by_test_id("stop-button").click()
    page.get_by_test_id("chat-stopped").wait_for()
    text = page.get_by_test_id("assistant-text").last.inner_text()
    assert "w3" in text and "w59" not in text
    deadline = time.monotonic() + 3
    while not emulator.requests()[-1].get("disconnected"):
        assert time.monotonic() < deadline, "stopping in the browser did not cancel the upstream stream"
        time.sleep(0.05)
    shot(page, "playground-stopped")
    context.close()
