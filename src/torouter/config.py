"""Settings: a YAML file plus environment overrides, with `${VAR}` interpolation.

Errors name the file, the field and the fix, so that `torouter serve` can print one line and exit 2.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PLATFORMS: dict[str, str | None] = {
    # platform -> default base URL (what that vendor's own SDK takes as its base URL)
    "anthropic": "https://api.anthropic.com",
    "openai": "https://api.openai.com/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "gemini": "https://generativelanguage.googleapis.com",
    "openai_compatible": None,
}

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./torouter.db"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """A config problem, worded as `FILE: FIELD: what is wrong; the fix`."""

    def __init__(self, source: str, field_name: str, problem: str) -> None:
        self.source = source
        self.field_name = field_name
        self.problem = problem
        super().__init__(f"{source}: {field_name}: {problem}")


@dataclass(slots=True)
class Timeouts:
    connect: float = 10.0
    first_byte: float = 300.0
    idle: float = 300.0


@dataclass(slots=True)
class UpstreamConfig:
    name: str
    platform: str
    base_url: str
    api_key: str
    weight: int = 1
    priority: int = 0
    models: list[str] = field(default_factory=list)
    model_map: dict[str, str] = field(default_factory=dict)
    max_concurrency: int = 0
    rpm: int = 0
    tpm: int = 0
    timeouts: Timeouts = field(default_factory=Timeouts)


@dataclass(slots=True)
class GroupConfig:
    name: str
    platform: str
    upstreams: list[str]
    models: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    price_multiplier: float = 1.0
    rpm: int = 0
    tpm: int = 0
    max_concurrency: int = 0
    budget_usd: float | None = None
    budget_period: str | None = None


BUDGET_PERIODS = ("daily", "weekly", "monthly")


@dataclass(slots=True)
class CorsConfig:
    """Browser access to the API surfaces. Off unless origins are listed; never for the admin pages."""

    origins: list[str] = field(default_factory=list)
    origin_regex: str | None = None
    max_age: int = 600

    @property
    def enabled(self) -> bool:
        return bool(self.origins or self.origin_regex)


@dataclass(slots=True)
class Settings:
    source: str = "<defaults>"
    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    admin_token: str | None = None
    key_refresh_interval: float = 1.0
    usage_flush_interval: float = 1.0
    max_body_bytes: int = 32 * 1024 * 1024
    responses_retention: float = 30 * 86400.0  # seconds a stored Responses answer is kept
    max_attempts: int = 3  # accounts one call may try before it fails
    retry_deadline: float = 60.0  # no new attempt starts this many seconds after the call began
    affinity_ttl: float = 3600.0  # seconds an idle conversation stays pinned to its account
    shutdown_grace: float = 30.0  # seconds in-flight calls get to finish after SIGTERM
    log_level: str = "info"
    workers: int = 0  # worker processes of `serve`; 0: one per CPU core
    # Failed authentications (unknown keys or admin tokens) one client address may make per window
    # before it gets 429s until the window ends; 0 turns the throttle off.
    auth_failure_limit: int = 20
    auth_failure_window: float = 60.0
    cors: CorsConfig = field(default_factory=CorsConfig)
    # Proxies whose X-Forwarded-For names the client (uvicorn's setting; None: $FORWARDED_ALLOW_IPS or 127.0.0.1)
    forwarded_allow_ips: str | None = None
    upstreams: list[UpstreamConfig] = field(default_factory=list)
    groups: list[GroupConfig] = field(default_factory=list)


def _interpolate(value: Any, source: str, where: str) -> Any:
    """Replace `${VAR}` and `${VAR:-default}` in every string of the loaded YAML."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(
                source, where, f"environment variable {name} is not set; export it or write the value"
            )

        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, source, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, source, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


class _Reader:
    """Typed access to one mapping of the config, with errors that name the field."""

    def __init__(self, data: dict[str, Any], source: str, where: str) -> None:
        self.data, self.source, self.where = data, source, where

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.source, self.path(key), problem)

    def str(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.data.get(key, default)
        if value is None:
            if required:
                raise self.fail(key, "is required; add it")
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str) or (required and not value.strip()):
            raise self.fail(key, f"must be a non-empty string, got {value!r}")
        return value

    def num(self, key: str, default: float, *, minimum: float = 0, integer: bool = False) -> Any:
        value = self.data.get(key, default)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"must be a number, got {value!r}")
        if integer and int(value) != value:
            raise self.fail(key, f"must be a whole number, got {value!r}")
        if value < minimum:
            raise self.fail(key, f"must be at least {minimum}, got {value!r}")
        return int(value) if integer else float(value)

    def str_list(self, key: str) -> list[str]:
        value = self.data.get(key) or []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "must be a list of strings")
        return list(value)

    def str_map(self, key: str) -> dict[str, str]:
        value = self.data.get(key) or {}
        if isinstance(value, list):  # a plain list of names maps each to itself
            value = (
                {v: v for v in value if isinstance(v, str)}
                if all(isinstance(v, str) for v in value)
                else None
            )
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise self.fail(key, "must be a mapping of model name (wildcards allowed) to target model")
        return dict(value)


_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*")


def _duration(r: _Reader, key: str, default: float) -> float:
    """Seconds from a number, or from text such as 30d, 12h, 45m or 90s."""
    value = r.data.get(key)
    if value is None:
        return default
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    m = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if not m or float(m.group(1)) <= 0:
        raise r.fail(key, f"must be a duration such as 30d, 12h or 3600, got {value!r}")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]


def _known_fields(r: _Reader, allowed: set[str]) -> None:
    for key in r.data:
        if key not in allowed:
            raise r.fail(str(key), f"is not a field here; use one of {', '.join(sorted(allowed))}")


def _platform(r: _Reader) -> str:
    platform = r.str("platform", required=True)
    assert platform is not None
    if platform not in PLATFORMS:
        raise r.fail("platform", f"{platform!r} is not a platform; use one of {', '.join(PLATFORMS)}")
    return platform


def _upstream(raw: Any, source: str, where: str) -> UpstreamConfig:
    if not isinstance(raw, dict):
        raise ConfigError(source, where, "must be a mapping with name, platform, base_url and api_key")
    r = _Reader(raw, source, where)
    _known_fields(r, set(UpstreamConfig.__dataclass_fields__))
    platform = _platform(r)
    base_url = r.str("base_url", PLATFORMS[platform])
    if not base_url:
        raise r.fail(
            "base_url", f"is required for platform {platform}; give the URL its OpenAI SDK would take"
        )
    if not base_url.startswith(("http://", "https://")):
        raise r.fail("base_url", f"must start with http:// or https://, got {base_url!r}")
    t = raw.get("timeouts") or {}
    if not isinstance(t, dict):
        raise r.fail("timeouts", "must be a mapping with connect, first_byte and idle (seconds)")
    tr = _Reader(t, source, r.path("timeouts"))
    _known_fields(tr, set(Timeouts.__dataclass_fields__))
    timeouts = Timeouts(
        connect=tr.num("connect", 10.0, minimum=0.001),
        first_byte=tr.num("first_byte", 300.0, minimum=0.001),
        idle=tr.num("idle", 300.0, minimum=0.001),
    )
    return UpstreamConfig(
        name=r.str("name", required=True) or "",
        platform=platform,
        base_url=base_url.rstrip("/"),
        api_key=r.str("api_key", required=True) or "",
        weight=r.num("weight", 1, minimum=0, integer=True),
        priority=r.num("priority", 0, minimum=-1_000_000, integer=True),
        models=r.str_list("models"),
        model_map=r.str_map("model_map"),
        max_concurrency=r.num("max_concurrency", 0, integer=True),
        rpm=r.num("rpm", 0, integer=True),
        tpm=r.num("tpm", 0, integer=True),
        timeouts=timeouts,
    )


def _group(raw: Any, source: str, where: str, upstreams: dict[str, UpstreamConfig]) -> GroupConfig:
    if not isinstance(raw, dict):
        raise ConfigError(source, where, "must be a mapping with name, platform and upstreams")
    r = _Reader(raw, source, where)
    _known_fields(r, set(GroupConfig.__dataclass_fields__))
    platform = _platform(r)
    names = r.str_list("upstreams")
    if not names:
        raise r.fail("upstreams", "must name at least one upstream from the upstreams list")
    for i, name in enumerate(names):
        up = upstreams.get(name)
        if up is None:
            known = ", ".join(upstreams) or "none declared"
            raise r.fail(
                f"upstreams[{i}]", f"no upstream is named {name!r}; declare it first (known: {known})"
            )
        if up.platform != platform:
            raise r.fail(
                f"upstreams[{i}]",
                f"upstream {name!r} is on platform {up.platform}, not {platform}; a group's upstreams share its platform",
            )
    return GroupConfig(
        name=r.str("name", required=True) or "",
        platform=platform,
        upstreams=names,
        models=r.str_map("models"),
        aliases=r.str_map("aliases"),
        price_multiplier=r.num("price_multiplier", 1.0),
        rpm=r.num("rpm", 0, integer=True),
        tpm=r.num("tpm", 0, integer=True),
        max_concurrency=r.num("max_concurrency", 0, integer=True),
        budget_usd=None if raw.get("budget_usd") is None else r.num("budget_usd", 0.0),
        budget_period=_budget_period(r),
    )


def _budget_period(r: _Reader) -> str | None:
    period = r.str("budget_period")
    if period is not None and period not in BUDGET_PERIODS:
        raise r.fail(
            "budget_period", f"must be one of {', '.join(BUDGET_PERIODS)} (or left out), got {period!r}"
        )
    return period


def _unique(items: list[Any], source: str, section: str) -> None:
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item.name in seen:
            raise ConfigError(
                source, f"{section}[{i}].name", f"{item.name!r} is declared twice; names must be unique"
            )
        seen.add(item.name)


def _cors(value: Any, source: str) -> CorsConfig:
    if value is None:
        return CorsConfig()
    if not isinstance(value, dict):
        raise ConfigError(source, "cors", "must be a mapping with origins (a list) and optionally max_age")
    r = _Reader(value, source, "cors")
    _known_fields(r, {"origins", "origin_regex", "max_age"})
    origins = r.str_list("origins")
    for origin in origins:
        if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
            raise r.fail("origins", f"{origin!r} is not an origin; write scheme://host[:port], or *")
    regex = r.str("origin_regex")
    if regex is not None:
        try:
            re.compile(regex)
        except re.error as exc:
            raise r.fail("origin_regex", f"is not a valid regular expression ({exc})") from None
    return CorsConfig(origins, regex, r.num("max_age", 600, minimum=0, integer=True))


def parse_settings(data: Any, source: str) -> Settings:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, "<top level>", "must be a YAML mapping (key: value lines)")
    data = _interpolate(data, source, "")
    known = set(Settings.__dataclass_fields__) - {"source"}
    for key in data:
        if key not in known:
            raise ConfigError(source, str(key), f"is not a setting; use one of {', '.join(sorted(known))}")
    r = _Reader(data, source, "")
    raw_ups = data.get("upstreams") or []
    raw_groups = data.get("groups") or []
    if not isinstance(raw_ups, list):
        raise r.fail("upstreams", "must be a list of upstream accounts")
    if not isinstance(raw_groups, list):
        raise r.fail("groups", "must be a list of groups")
    ups = [_upstream(u, source, f"upstreams[{i}]") for i, u in enumerate(raw_ups)]
    _unique(ups, source, "upstreams")
    by_name = {u.name: u for u in ups}
    groups = [_group(g, source, f"groups[{i}]", by_name) for i, g in enumerate(raw_groups)]
    _unique(groups, source, "groups")
    return Settings(
        source=source,
        host=r.str("host", "127.0.0.1") or "127.0.0.1",
        port=r.num("port", 8080, minimum=0, integer=True),
        database_url=r.str("database_url", DEFAULT_DATABASE_URL) or DEFAULT_DATABASE_URL,
        redis_url=r.str("redis_url"),
        admin_token=r.str("admin_token"),
        key_refresh_interval=r.num("key_refresh_interval", 1.0, minimum=0.05),
        usage_flush_interval=r.num("usage_flush_interval", 1.0, minimum=0.05),
        max_body_bytes=r.num("max_body_bytes", 32 * 1024 * 1024, minimum=1024, integer=True),
        responses_retention=_duration(r, "responses_retention", 30 * 86400.0),
        max_attempts=r.num("max_attempts", 3, minimum=1, integer=True),
        retry_deadline=r.num("retry_deadline", 60.0, minimum=0.1),
        affinity_ttl=_duration(r, "affinity_ttl", 3600.0),
        shutdown_grace=r.num("shutdown_grace", 30.0, minimum=0),
        log_level=r.str("log_level", "info") or "info",
        workers=r.num("workers", 0, minimum=0, integer=True),
        auth_failure_limit=r.num("auth_failure_limit", 20, minimum=0, integer=True),
        auth_failure_window=_duration(r, "auth_failure_window", 60.0),
        cors=_cors(data.get("cors"), source),
        forwarded_allow_ips=r.str("forwarded_allow_ips"),
        upstreams=ups,
        groups=groups,
    )


_ENV_OVERRIDES = {
    "TOROUTER_DATABASE_URL": "database_url",
    "TOROUTER_REDIS_URL": "redis_url",
    "TOROUTER_ADMIN_TOKEN": "admin_token",
    "TOROUTER_HOST": "host",
    "TOROUTER_PORT": "port",
    "TOROUTER_LOG_LEVEL": "log_level",
    "TOROUTER_SHUTDOWN_GRACE": "shutdown_grace",
    "TOROUTER_WORKERS": "workers",
}


def load_settings(path: str | Path | None = None) -> Settings:
    """Read the config file (argument, else $TOROUTER_CONFIG, else none), then apply the environment."""
    path = path or os.environ.get("TOROUTER_CONFIG") or None
    data: dict[str, Any] = {}
    source = "<defaults>"
    if path:
        source = str(path)
        p = Path(path)
        if not p.is_file():
            raise ConfigError(
                source, "<file>", "does not exist; check the path given to --config or TOROUTER_CONFIG"
            )
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}" if mark else "<file>"
            raise ConfigError(
                source, where, f"is not valid YAML ({getattr(exc, 'problem', exc)}); fix the syntax"
            ) from None
        except UnicodeDecodeError:
            raise ConfigError(source, "<file>", "is not UTF-8 text; save it as UTF-8") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(source, "<top level>", "must be a YAML mapping (key: value lines)")
        data = loaded or {}
    for env, key in _ENV_OVERRIDES.items():
        if os.environ.get(env):
            data[key] = os.environ[env]
            if key in ("port", "workers"):
                try:
                    data[key] = int(os.environ[env])
                except ValueError:
                    raise ConfigError(env, key, f"must be a whole number, got {os.environ[env]!r}") from None
            elif key == "shutdown_grace":
                try:
                    data[key] = float(os.environ[env])
                except ValueError:
                    raise ConfigError(
                        env, key, f"must be a number of seconds, got {os.environ[env]!r}"
                    ) from None
    return parse_settings(data, source)
