"""Choosing accounts from a group's pool: priority tier first, then weighted random within a tier."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

from torouter.catalog import Account
from torouter.routing.health import Health


def order_candidates(
    accounts: Sequence[Account], rng: random.Random | None = None, health: Health | None = None
) -> list[Account]:
    """Usable accounts in the order to try them: higher priority first, weight-shuffled inside a tier.

    Accounts cooling down are skipped; when every account is cooling, the one that recovers first
    is tried anyway, since refusing the call outright helps nobody.
    """
    if len(accounts) == 1:  # most groups: the one account, unless it cannot be used
        only = accounts[0]
        if only.status == "active" and (health is None or health.usable(only, time.time())):
            return [only]
    active = [a for a in accounts if a.status == "active"]
    if health is not None:
        now = time.time()
        usable = [a for a in active if health.usable(a, now)]
        if not usable:
            waiting = sorted((a for a in active if health.cooling(a) != float("inf")), key=health.cooling)
            return waiting[:1]
    else:
        usable = active
    if len(usable) <= 1:
        return usable
    rand = (rng or random).random
    tiers: dict[int, list[Account]] = {}
    for a in usable:
        tiers.setdefault(a.priority, []).append(a)
    ordered: list[Account] = []
    for priority in sorted(tiers, reverse=True):
        tier = tiers[priority]
        # Efraimidis-Spirakis: a weighted shuffle in one pass; weight 0 goes last.
        keyed = [((rand() ** (1.0 / a.weight)) if a.weight > 0 else -1.0, a) for a in tier]
        keyed.sort(key=lambda item: item[0], reverse=True)
        ordered.extend(a for _, a in keyed)
    return ordered
