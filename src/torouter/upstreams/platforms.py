"""Per-platform request details: the URL of each endpoint and the credential headers."""

from __future__ import annotations

from urllib.parse import quote

from torouter.catalog import Account

OPENAI_LIKE = frozenset({"openai", "openrouter", "openai_compatible"})
ANTHROPIC_VERSION = "2023-06-01"


def url_for(account: Account, endpoint: str, model: str = "", query: str = "") -> str:
    """The full upstream URL. `endpoint` is the path after the platform's SDK base URL."""
    base = account.base_url
    if account.platform == "gemini" and "{model}" in endpoint:
        # One path segment, whatever the client named: `/`, `..`, `?` or `#` must not move the call.
        endpoint = endpoint.replace("{model}", quote(model, safe=""))
    url = base + endpoint
    return f"{url}?{query}" if query else url


def auth_headers(account: Account) -> dict[str, str]:
    if account.platform == "anthropic":
        return {"x-api-key": account.credential}
    if account.platform == "gemini":
        return {"x-goog-api-key": account.credential}
    return {"authorization": f"Bearer {account.credential}"}
