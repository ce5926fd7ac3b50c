"""Choosing accounts from a group's pool: priority tier first, then weighted random within a tier."""

from __future__ import annotations

import random
from collections.abc import Sequence

from torouter.catalog import Account


def order_candidates(accounts: Sequence[Account], rng: random.Random | None = None) -> list[Account]:
    """All usable accounts in the order to try them: higher priority first, weight-shuffled inside a tier."""
    usable = [a for a in accounts if a.status == "active"]
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
