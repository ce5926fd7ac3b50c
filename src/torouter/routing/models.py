"""Model identifiers: what a group lets a key call, and what name goes upstream."""

from __future__ import annotations

import difflib
from fnmatch import fnmatchcase

from torouter.catalog import Account, GroupEntry
from torouter.errors import GatewayError


def _is_pattern(name: str) -> bool:
    return any(c in name for c in "*?[")


def _map_name(mapping: dict[str, str], model: str) -> str | None:
    """Apply a name mapping: exact keys first, then patterns in declared order. `*` keeps the name."""
    target = mapping.get(model)
    if target is None:
        for pattern, t in mapping.items():
            if _is_pattern(pattern) and fnmatchcase(model, pattern):
                target = t
                break
    if target is None:
        return None
    return model if target in ("*", "") else target


def serves(account: Account, model: str) -> bool:
    return not account.models or any(
        m == model or (_is_pattern(m) and fnmatchcase(model, m)) for m in account.models
    )


def upstream_model_for(account: Account, model: str) -> str:
    """An account may call a model by its own name (for example a deployment name)."""
    if not account.model_map:
        return model
    return _map_name(account.model_map, model) or model


# The vendor prefixes each platform answers to: `anthropic/claude-opus-4-7` on an anthropic group.
VENDOR_PREFIXES: dict[str, tuple[str, ...]] = {
    "anthropic": ("anthropic",),
    "openai": ("openai",),
    "gemini": ("google", "gemini"),
    "openai_compatible": (),
    "openrouter": (),  # OpenRouter's own ids are vendor/model: they pass through whole
}


def strip_vendor(group: GroupEntry, requested: str) -> str:
    """`openai/gpt-5` -> `gpt-5` on a group whose platform is that vendor's; anything else unchanged.

    A prefix the group's own mapping names explicitly is left alone, so a mapping can still
    route `anthropic/claude-*` to another platform's model.
    """
    vendor, sep, rest = requested.partition("/")
    if not sep or not rest or vendor not in VENDOR_PREFIXES.get(group.platform, ()):
        return requested
    if requested in group.aliases or (group.models and _map_name(group.models, requested) is not None):
        return requested
    return rest


RESOLVED_PER_GROUP = 256  # answers kept per group and snapshot: clients ask for a few models


def resolve(group: GroupEntry, requested: str, allowed: tuple[str, ...] = ()) -> tuple[str, list[Account]]:
    """The model to ask the platform for, and the accounts that can serve it, in declared order.

    The answer is the same for every call of a snapshot (which builds new groups), so it is
    kept on the group; refusals are not. Callers must not change the list of accounts.
    """
    answer = group.resolved.get((requested, allowed))
    if answer is not None:
        return answer
    answer = _resolve(group, requested, allowed)
    if len(group.resolved) < RESOLVED_PER_GROUP:
        group.resolved[(requested, allowed)] = answer
    return answer


def _resolve(group: GroupEntry, requested: str, allowed: tuple[str, ...]) -> tuple[str, list[Account]]:
    model = strip_vendor(group, requested)
    model = group.aliases.get(model, model)
    if group.models:
        mapped = _map_name(group.models, model)
        if mapped is None:
            raise not_found(group, requested, allowed)
        model = mapped
    accounts = [a for a in group.accounts if serves(a, model)]
    if not accounts:
        raise not_found(group, requested, allowed)
    bare = strip_vendor(group, requested)
    if allowed and not any(
        name == a or (_is_pattern(a) and fnmatchcase(name, a)) for a in allowed for name in {requested, bare}
    ):
        raise GatewayError(
            "permission",
            f"This API key does not have permission to use the model '{requested}'. "
            f"It may use: {', '.join(allowed)}.",
            code="model_not_allowed",
            param="model",
        )
    return model, accounts


def listed_models(group: GroupEntry, allowed: tuple[str, ...] = ()) -> list[str]:
    """The concrete ids a key of this group can call, for the /models listings."""
    names: set[str] = set(group.aliases)
    if group.models:
        names.update(m for m in group.models if not _is_pattern(m))
        for account in group.accounts:
            names.update(m for m in account.models if not _is_pattern(m) and _map_name(group.models, m) == m)
    else:
        for account in group.accounts:
            names.update(m for m in account.models if not _is_pattern(m))
    if allowed:
        names = {n for n in names if any(n == a or (_is_pattern(a) and fnmatchcase(n, a)) for a in allowed)}
    return sorted(names)


def not_found(group: GroupEntry, requested: str, allowed: tuple[str, ...] = ()) -> GatewayError:
    close = difflib.get_close_matches(requested, listed_models(group, allowed), n=3, cutoff=0.4)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return GatewayError(
        "not_found",
        f"The model '{requested}' does not exist or you do not have access to it.{hint}",
        code="model_not_found",
        param="model",
    )
