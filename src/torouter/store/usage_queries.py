"""Usage queries behind the admin API: the filtered log, and the time series with latency percentiles.

Both run on SQLite and PostgreSQL. Sums are SQL aggregates; PostgreSQL computes the percentiles
too (percentile_cont), and on SQLite, which has none, they are computed here from the latencies,
by the same linear interpolation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Integer, Select, case, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from torouter.store.schema import ApiKey, UsageRecord

# The columns of a usage record the API shows (all but `extra`, which is internal).
RECORD_COLUMNS = tuple(c.name for c in UsageRecord.__table__.columns if c.name != "extra")
PERCENTILES = (0.5, 0.95)


@dataclass(slots=True)
class UsageFilter:
    since: float | None = None
    until: float | None = None
    key: str | None = None  # an id, or a name (the key's current one or the one it had on the call)
    group: str | None = None
    model: str | None = None
    account: str | None = None
    status: int | str | None = None  # a status code, or "error" for every code from 400

    def conditions(self) -> list[ColumnElement[bool]]:
        u = UsageRecord
        where: list[ColumnElement[bool]] = []
        if self.since is not None:
            where.append(u.created_at >= self.since)
        if self.until is not None:
            where.append(u.created_at < self.until)
        if self.key is not None:
            if self.key.isdecimal() and int(self.key) < 2**31:  # an id; past INTEGER's range, a name
                where.append(u.key_id == int(self.key))
            else:
                named = select(ApiKey.id).where(ApiKey.name == self.key).scalar_subquery()
                where.append(or_(u.key_name == self.key, u.key_id.in_(named)))
        for column, value in (
            (u.group_name, self.group),
            (u.model, self.model),
            (u.account_name, self.account),
        ):
            if value is not None:
                where.append(column == value)
        if self.status == "error":
            where.append(u.status_code >= 400)
        elif self.status is not None:
            where.append(u.status_code == int(self.status))
        return where


def record_dict(row: UsageRecord) -> dict[str, Any]:
    return {name: getattr(row, name) for name in RECORD_COLUMNS}


async def usage_log(
    session: AsyncSession, where: UsageFilter, limit: int = 50, offset: int = 0
) -> tuple[list[UsageRecord], int]:
    """One page of the usage records that match, newest first, and how many match in all."""
    conditions = where.conditions()
    total = (await session.execute(select(func.count()).select_from(UsageRecord).where(*conditions))).scalar()
    query = (
        select(UsageRecord)
        .where(*conditions)
        .order_by(UsageRecord.created_at.desc(), UsageRecord.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list((await session.execute(query)).scalars()), int(total or 0)


def percentile(ordered: list[float], q: float) -> float | None:
    """Linear interpolation between the closest ranks, as PostgreSQL's percentile_cont computes it."""
    if not ordered:
        return None
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _sums(sub: Any) -> list[ColumnElement[Any]]:
    return [
        func.count().label("calls"),
        func.coalesce(func.sum(case((sub.c.status_code >= 400, 1), else_=0)), 0).label("errors"),
        func.coalesce(func.sum(sub.c.input_tokens), 0).label("input_tokens"),
        func.coalesce(func.sum(sub.c.output_tokens), 0).label("output_tokens"),
        func.coalesce(func.sum(sub.c.cost_usd), 0.0).label("cost_usd"),
    ]


def _point(m: Any) -> dict[str, Any]:
    return {
        "calls": int(m["calls"]),
        "errors": int(m["errors"]),
        "input_tokens": int(m["input_tokens"]),
        "output_tokens": int(m["output_tokens"]),
        "cost_usd": float(m["cost_usd"]),
        "p50_ms": None,
        "p95_ms": None,
    }


async def usage_timeseries(
    session: AsyncSession, since: float, until: float, bucket: float, where: UsageFilter
) -> dict[str, Any]:
    """Calls, errors, tokens, cost and p50/p95 latency per `bucket` seconds from `since` to `until`.

    Buckets start at multiples of `bucket` (hours on the hour), and every bucket of the span is
    listed, empty ones too. `totals` has the same figures over the whole span, with `error_rate`.
    """
    u = UsageRecord
    postgres = session.bind.dialect.name == "postgresql"
    ratio = u.created_at / float(bucket)
    index = cast(func.floor(ratio), BigInteger) if postgres else cast(ratio, Integer)  # created_at > 0
    span = UsageFilter(
        since=since, until=until, key=where.key, group=where.group, model=where.model, account=where.account
    )
    sub = (
        select(index.label("idx"), u.status_code, u.input_tokens, u.output_tokens, u.cost_usd, u.latency_ms)
        .where(*span.conditions())
        .subquery()
    )
    quantiles = [
        func.percentile_cont(q).within_group(sub.c.latency_ms).label(f"q{i}")
        for i, q in enumerate(PERCENTILES)
    ]
    per_bucket: Select[Any] = select(sub.c.idx, *_sums(sub)).group_by(sub.c.idx)
    whole: Select[Any] = select(*_sums(sub))
    if postgres:
        per_bucket, whole = per_bucket.add_columns(*quantiles), whole.add_columns(*quantiles)
    points: dict[int, dict[str, Any]] = {}
    for row in (await session.execute(per_bucket)).all():
        m = row._mapping
        point = points[int(m["idx"])] = _point(m)
        if postgres:
            point["p50_ms"], point["p95_ms"] = m["q0"], m["q1"]
    totals_row = (await session.execute(whole)).one()._mapping
    totals = _point(totals_row)
    if postgres:
        totals["p50_ms"], totals["p95_ms"] = totals_row["q0"], totals_row["q1"]
    else:
        latencies: dict[int, list[float]] = {}
        rows = await session.execute(select(sub.c.idx, sub.c.latency_ms).order_by(sub.c.latency_ms))
        for idx, latency in rows.all():
            latencies.setdefault(int(idx), []).append(float(latency or 0.0))
        for idx, values in latencies.items():
            points[idx]["p50_ms"], points[idx]["p95_ms"] = (percentile(values, q) for q in PERCENTILES)
        everything = sorted(v for values in latencies.values() for v in values)
        totals["p50_ms"], totals["p95_ms"] = (percentile(everything, q) for q in PERCENTILES)
    totals["error_rate"] = totals["errors"] / totals["calls"] if totals["calls"] else 0.0
    first, last = math.floor(since / bucket), math.ceil(until / bucket) - 1
    empty = _point({"calls": 0, "errors": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0})
    series = [{"t": i * bucket, **points.get(i, empty)} for i in range(first, max(first, last) + 1)]
    return {"bucket": bucket, "since": since, "until": until, "series": series, "totals": totals}
