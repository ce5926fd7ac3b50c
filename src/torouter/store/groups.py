"""Groups: create, change and delete, with the checks the config loader makes on the file.

A group's upstreams must exist and be on its platform; a group with keys cannot be deleted.
Every change moves the group's updated_at, so running gateways reload it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from torouter.config import PLATFORMS
from torouter.store.errors import Conflict, Invalid
from torouter.store.keys import check_budget_period, group_named
from torouter.store.schema import ApiKey, Group, GroupUpstream, UpstreamAccount

# The columns `create_group` and `update_group` set besides the name and the upstreams.
GROUP_FIELDS = frozenset(
    {
        "platform",
        "models",
        "aliases",
        "price_multiplier",
        "rpm",
        "tpm",
        "max_concurrency",
        "budget_usd",
        "budget_period",
    }
)
_DEFAULTS: dict[str, Any] = {
    "models": {},
    "aliases": {},
    "price_multiplier": 1.0,
    "rpm": 0,
    "tpm": 0,
    "max_concurrency": 0,
    "budget_usd": None,
    "budget_period": None,
}


async def find_group(session: AsyncSession, name: str) -> Group:
    return await group_named(session, name)


async def group_upstreams(session: AsyncSession, group_ids: Sequence[int]) -> dict[int, list[str]]:
    """Each group's upstream account names, in pool order."""
    rows = await session.execute(
        select(GroupUpstream.group_id, UpstreamAccount.name)
        .join(UpstreamAccount, UpstreamAccount.id == GroupUpstream.account_id)
        .where(GroupUpstream.group_id.in_(group_ids))
        .order_by(GroupUpstream.group_id, GroupUpstream.position)
    )
    names: dict[int, list[str]] = {gid: [] for gid in group_ids}
    for gid, name in rows.all():
        names[gid].append(name)
    return names


async def key_counts(session: AsyncSession) -> dict[int, int]:
    """How many keys (revoked ones too) each group holds, by group id."""
    rows = await session.execute(select(ApiKey.group_id, func.count()).group_by(ApiKey.group_id))
    return {gid: int(n) for gid, n in rows.all()}


def _check(values: Mapping[str, Any]) -> None:
    platform = values.get("platform")
    if "platform" in values and platform not in PLATFORMS:
        raise Invalid(f"{platform!r} is not a platform; use one of {', '.join(PLATFORMS)}", "platform")
    check_budget_period(values.get("budget_period"))


async def _pool(session: AsyncSession, platform: str, names: Sequence[str]) -> list[UpstreamAccount]:
    """The named accounts, in order; each must exist and be on the group's platform."""
    if not names:
        raise Invalid("a group needs at least one upstream account", "upstreams")
    if len(set(names)) != len(names):
        raise Invalid("an upstream is named twice", "upstreams")
    found = {
        a.name: a
        for a in (
            await session.execute(select(UpstreamAccount).where(UpstreamAccount.name.in_(names)))
        ).scalars()
    }
    for i, name in enumerate(names):
        account = found.get(name)
        if account is None:
            raise Invalid(f"no upstream is named {name!r}; create it first", "upstreams", i)
        if account.platform != platform:
            raise Invalid(
                f"upstream {name!r} is on platform {account.platform}, not {platform}; "
                "a group's upstreams share its platform",
                "upstreams",
                i,
            )
    return [found[name] for name in names]


async def _set_pool(session: AsyncSession, group: Group, accounts: list[UpstreamAccount]) -> None:
    await session.execute(delete(GroupUpstream).where(GroupUpstream.group_id == group.id))
    session.add_all(
        GroupUpstream(group_id=group.id, account_id=a.id, position=i) for i, a in enumerate(accounts)
    )


async def create_group(
    session: AsyncSession,
    name: str,
    platform: str,
    upstreams: Sequence[str],
    fields: Mapping[str, Any] | None = None,
    source: str = "admin",
) -> Group:
    """A new group with its pool of accounts; `fields` are the optional GROUP_FIELDS."""
    values = {**_DEFAULTS, **(fields or {}), "platform": platform}
    unknown = set(values) - GROUP_FIELDS
    if unknown:
        raise ValueError(f"cannot set {', '.join(sorted(unknown))} of a group")
    if not name.strip():
        raise Invalid("a group needs a name", "name")
    _check(values)
    if values["budget_period"] is not None and values["budget_usd"] is None:
        raise Invalid("a budget period needs a budget: give budget_usd too", "budget_period")
    taken = await session.execute(select(Group.id).where(Group.name == name))
    if taken.first() is not None:
        raise Conflict(f"a group is already named {name!r}")
    accounts = await _pool(session, platform, upstreams)
    now = time.time()
    group = Group(name=name, source=source, created_at=now, updated_at=now, **values)
    session.add(group)
    await session.flush()
    await _set_pool(session, group, accounts)
    await session.flush()
    return group


async def update_group(session: AsyncSession, name: str, changes: Mapping[str, Any]) -> Group:
    """Change the given GROUP_FIELDS and, with "upstreams", the pool. A null budget clears its period."""
    unknown = set(changes) - GROUP_FIELDS - {"upstreams"}
    if unknown:
        raise ValueError(f"cannot change {', '.join(sorted(unknown))} of a group")
    group = await group_named(session, name)
    values = {k: v for k, v in changes.items() if k != "upstreams"}
    _check(values)
    budget = values.get("budget_usd", group.budget_usd)
    if budget is None and "budget_usd" in values:
        values["budget_period"] = None
    elif budget is None and values.get("budget_period") is not None:
        raise Invalid(f"group {name!r} has no budget: give budget_usd with the period", "budget_period")
    platform = values.get("platform", group.platform)
    if "upstreams" in changes:
        await _set_pool(session, group, await _pool(session, platform, changes["upstreams"]))
    elif platform != group.platform:
        current = (await group_upstreams(session, [group.id]))[group.id]
        try:
            await _pool(session, platform, current)
        except Invalid as exc:
            raise Invalid(f"{exc}; give upstreams on {platform} with the new platform", "platform") from None
    for column, value in values.items():
        setattr(group, column, value)
    group.updated_at = max(time.time(), group.updated_at + 0.001)
    await session.flush()
    return group


async def delete_group(session: AsyncSession, name: str) -> None:
    """Delete a group that holds no keys (a key always belongs to a group, revoked or not)."""
    group = await group_named(session, name)
    keys = (await key_counts(session)).get(group.id, 0)
    if keys:
        raise Conflict(
            f"group {name!r} still has {keys} key(s), revoked ones included; "
            "move them to another group first (PATCH /admin/api/keys/{id} with a group)"
        )
    await session.execute(delete(GroupUpstream).where(GroupUpstream.group_id == group.id))
    await session.delete(group)
    await session.flush()
