"""Upstream accounts: create, change and delete, with the checks the config loader makes on the file.

An account's credential is stored and handed to the router; nothing here returns it to a caller
other than the gateway itself. Every change moves updated_at, so running gateways reload it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Text, and_, cast, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from torouter.config import PLATFORMS, Timeouts
from torouter.store.errors import Conflict, Invalid, NotFound
from torouter.store.schema import Group, GroupUpstream, UpstreamAccount, UsageRecord
from torouter.store.sealing import sealer

# The columns `create_account` and `update_account` set besides the name.
ACCOUNT_FIELDS = frozenset(
    {
        "platform",
        "base_url",
        "credential",
        "weight",
        "priority",
        "models",
        "model_map",
        "max_concurrency",
        "rpm",
        "tpm",
        "timeouts",
    }
)
ADMIN_DISABLED = "disabled by an admin"
_DEFAULTS: dict[str, Any] = {
    "weight": 1,
    "priority": 0,
    "models": [],
    "model_map": {},
    "max_concurrency": 0,
    "rpm": 0,
    "tpm": 0,
}


def full_timeouts(
    given: Mapping[str, float] | None, current: Mapping[str, float] | None = None
) -> dict[str, float]:
    """connect, first_byte and idle: those given, else the current ones, else the defaults."""
    defaults = Timeouts()
    base = {"connect": defaults.connect, "first_byte": defaults.first_byte, "idle": defaults.idle}
    return {**base, **(current or {}), **(given or {})}


async def find_account(session: AsyncSession, name: str) -> UpstreamAccount:
    row = (
        await session.execute(select(UpstreamAccount).where(UpstreamAccount.name == name))
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no upstream is named {name!r}", "upstream")
    return row


async def account_groups(session: AsyncSession, account_id: int) -> list[Group]:
    """The groups whose pool holds this account."""
    query = (
        select(Group)
        .join(GroupUpstream, GroupUpstream.group_id == Group.id)
        .where(GroupUpstream.account_id == account_id)
        .order_by(Group.name)
    )
    return list((await session.execute(query)).scalars())


def _check(values: Mapping[str, Any]) -> None:
    if "platform" in values and values["platform"] not in PLATFORMS:
        raise Invalid(
            f"{values['platform']!r} is not a platform; use one of {', '.join(PLATFORMS)}", "platform"
        )
    base_url = values.get("base_url")
    if "base_url" in values and not (
        isinstance(base_url, str) and base_url.startswith(("http://", "https://"))
    ):
        raise Invalid(f"base_url must start with http:// or https://, got {base_url!r}", "base_url")
    if "credential" in values and not values["credential"]:
        raise Invalid("the api_key must not be empty", "api_key")


async def create_account(
    session: AsyncSession, name: str, platform: str, fields: Mapping[str, Any], source: str = "admin"
) -> UpstreamAccount:
    """A new account; `fields` are ACCOUNT_FIELDS (credential required, base_url the platform's default)."""
    unknown = set(fields) - ACCOUNT_FIELDS
    if unknown:
        raise ValueError(f"cannot set {', '.join(sorted(unknown))} of an upstream")
    if not name.strip():
        raise Invalid("an upstream needs a name", "name")
    values = {**_DEFAULTS, **fields, "platform": platform}
    if values.get("base_url") is None:
        default = PLATFORMS.get(platform)
        if platform in PLATFORMS and default is None:
            raise Invalid(f"base_url is required for platform {platform}", "base_url")
        values["base_url"] = default
    values.setdefault("credential", "")
    _check(values)
    values["credential"] = sealer().seal(values["credential"])
    values["base_url"] = values["base_url"].rstrip("/")
    values["timeouts"] = full_timeouts(values.get("timeouts"))
    taken = await session.execute(select(UpstreamAccount.id).where(UpstreamAccount.name == name))
    if taken.first() is not None:
        raise Conflict(f"an upstream is already named {name!r}")
    now = time.time()
    row = UpstreamAccount(name=name, source=source, status="active", created_at=now, updated_at=now, **values)
    session.add(row)
    await session.flush()
    return row


async def update_account(session: AsyncSession, name: str, changes: Mapping[str, Any]) -> UpstreamAccount:
    """Change the given ACCOUNT_FIELDS. A new credential puts an account the upstream refused back in service."""
    unknown = set(changes) - ACCOUNT_FIELDS
    if unknown:
        raise ValueError(f"cannot change {', '.join(sorted(unknown))} of an upstream")
    row = await find_account(session, name)
    values = dict(changes)
    _check(values)
    if "base_url" in values:
        values["base_url"] = values["base_url"].rstrip("/")
    if "timeouts" in values:
        values["timeouts"] = full_timeouts(values["timeouts"], row.timeouts)
    platform = values.get("platform", row.platform)
    if platform != row.platform:
        clashing = [g.name for g in await account_groups(session, row.id) if g.platform != platform]
        if clashing:
            raise Conflict(
                f"upstream {name!r} serves group(s) {', '.join(clashing)} on {row.platform}; "
                "take it out of them before changing its platform"
            )
    new_credential = "credential" in values and not sealer().same(row.credential, values["credential"])
    if "credential" in values:
        values["credential"] = sealer().seal(values["credential"])
    if new_credential and row.status == "disabled" and row.status_reason != ADMIN_DISABLED:
        values["status"], values["status_reason"] = "active", None  # a new credential deserves a new try
    for column, value in values.items():
        setattr(row, column, value)
    row.updated_at = max(time.time(), row.updated_at + 0.001)
    await session.flush()
    return row


async def delete_account(session: AsyncSession, name: str) -> None:
    """Delete an account that no group's pool holds."""
    row = await find_account(session, name)
    groups = [g.name for g in await account_groups(session, row.id)]
    if groups:
        raise Conflict(f"upstream {name!r} serves group(s) {', '.join(groups)}; take it out of them first")
    await session.execute(delete(UpstreamAccount).where(UpstreamAccount.id == row.id))
    await session.flush()


async def recent_errors(session: AsyncSession, name: str, limit: int = 20) -> list[dict[str, Any]]:
    """The account's last failed calls and failed attempts (of calls that failed over), newest first."""
    u = UsageRecord
    query = (
        select(u)
        .where(
            or_(
                and_(u.account_name == name, u.status_code >= 400),
                cast(u.attempt_log, Text).contains(json.dumps(name), autoescape=True),
            )
        )
        .order_by(u.created_at.desc(), u.id.desc())
        .limit(limit * 5)
    )
    errors: list[dict[str, Any]] = []
    for r in (await session.execute(query)).scalars():
        base = {"created_at": r.created_at, "model": r.model, "request_id": r.request_id}
        if r.attempt_log:
            for attempt in reversed(r.attempt_log):
                status = int(attempt.get("status") or 0)
                if attempt.get("account") == name and not 200 <= status < 400:
                    errors.append({**base, "status": status, "error": attempt.get("error") or r.error})
        elif r.account_name == name:
            errors.append({**base, "status": r.status_code, "error": r.error})
        if len(errors) >= limit:
            break
    return errors[:limit]
