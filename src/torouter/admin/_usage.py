"""/admin/api/usage: the usage log, the summary `torouter usage` prints, and a time series for charts."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from torouter.admin._common import MAX_INT, GatewayDep, invalid, reading
from torouter.store.reports import USAGE_DIMENSIONS, usage_by, usage_total
from torouter.store.usage_queries import UsageFilter, record_dict, usage_log, usage_timeseries

router = APIRouter(prefix="/usage", tags=["usage"])
MAX_BUCKETS = 2000


class UsageRecord(BaseModel):
    """One call; the fields are described in docs/usage.md."""

    id: int
    request_id: str
    created_at: float
    key_id: int | None
    key_name: str
    group_name: str
    account_name: str
    surface: str
    platform: str
    endpoint: str
    model: str
    upstream_model: str
    stream: bool
    status_code: int
    error: str | None
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    cache_write_1h_tokens: int
    reasoning_tokens: int
    cost_usd: float
    estimated: bool
    latency_ms: float
    ttft_ms: float | None
    attempts: int
    session: str | None
    attempt_log: list[dict[str, Any]] | None


class UsagePage(BaseModel):
    data: list[UsageRecord]
    total: int = Field(description="How many records match the filters, over every page")


class Summary(BaseModel):
    by: list[str]
    since: float | None
    data: list[dict[str, Any]] = Field(description="One row per value of `by`, with the measures")
    total: dict[str, Any]


class Point(BaseModel):
    t: float = Field(description="The bucket's start")
    calls: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    p50_ms: float | None = Field(description="Median latency; null for a bucket with no calls")
    p95_ms: float | None


class Totals(BaseModel):
    calls: int
    errors: int
    error_rate: float
    input_tokens: int
    output_tokens: int
    cost_usd: float
    p50_ms: float | None
    p95_ms: float | None


class Timeseries(BaseModel):
    bucket: float
    since: float
    until: float
    series: list[Point]
    totals: Totals


# Year 0 to year 9999 in Unix seconds: far past any real query, and bucket arithmetic stays finite.
MAX_TIME = 253_402_300_800.0
Since = Annotated[
    float | None, Query(ge=-62_135_596_800, le=MAX_TIME, allow_inf_nan=False, description="Unix seconds")
]
Filter = Annotated[str | None, Query()]


@router.get("", response_model=UsagePage)
async def log(
    gw: GatewayDep,
    since: Since = None,
    until: Since = None,
    key: Annotated[str | None, Query(description="A key id or name")] = None,
    group: Filter = None,
    model: Filter = None,
    account: Filter = None,
    status: Annotated[
        str | None, Query(pattern=r"^(error|\d{3})$", description="A status code, or error for >= 400")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> UsagePage:
    """The usage records that match, newest first, one page at a time."""
    where = UsageFilter(since, until, key, group, model, account, status)
    async with reading(gw) as session:
        rows, total = await usage_log(session, where, limit, offset)
    return UsagePage(data=[UsageRecord(**record_dict(r)) for r in rows], total=total)


@router.get("/summary", response_model=Summary)
async def summary(
    gw: GatewayDep,
    by: Annotated[str, Query(description="key, group, model or account; or several: key,model")] = "key",
    since: Since = None,
) -> Summary:
    """The figures of `torouter usage --json`: one row per value of `by`, and the total."""
    dims = [d.strip() for d in by.split(",")]
    if not all(d in USAGE_DIMENSIONS for d in dims) or len(set(dims)) != len(dims):
        raise invalid("query", "by", "use key, group, model or account, or several joined by commas")
    async with reading(gw) as session:
        rows, total = await usage_by(session, dims, since), await usage_total(session, since)
    return Summary(by=dims, since=since, data=rows, total=total)


@router.get("/timeseries", response_model=Timeseries)
async def timeseries(
    gw: GatewayDep,
    since: Since = None,
    until: Since = None,
    bucket: Annotated[
        float, Query(ge=1, le=MAX_TIME, allow_inf_nan=False, description="Seconds per point")
    ] = 3600,
    key: Annotated[str | None, Query(description="A key id or name")] = None,
    group: Filter = None,
    model: Filter = None,
    account: Filter = None,
) -> Timeseries:
    """Calls, errors, tokens, cost and p50/p95 latency per bucket; the last 24 hours by the hour by default."""
    end = time.time() if until is None else until
    start = end - 86400 if since is None else since
    if start >= end:
        raise invalid("query", "since", "since must be before until")
    if (end - start) / bucket > MAX_BUCKETS:
        raise invalid(
            "query", "bucket", f"too many buckets: at most {MAX_BUCKETS} per span; widen the bucket"
        )
    where = UsageFilter(key=key, group=group, model=model, account=account)
    async with reading(gw) as session:
        result = await usage_timeseries(session, start, end, bucket, where)
    return Timeseries(**result)
