"""What a store operation raises when it cannot be done as asked.

The CLI prints any `StoreError` on one line; the admin API answers 404, 409 or 422 by its kind.
"""

from __future__ import annotations


class StoreError(Exception):
    """A store operation that cannot be done as asked (unknown group, unknown key)."""


class NotFound(StoreError):
    """No row has that id or name. `kind` says what was looked for: key, group, upstream, price."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class Conflict(StoreError):
    """The change clashes with other rows: a name that is taken, a group that still has keys."""


class Invalid(StoreError):
    """A value that cannot be stored; `field` names it, as a path (("upstreams", 1), ("budget_period",))."""

    def __init__(self, message: str, *field: str | int) -> None:
        super().__init__(message)
        self.field = field
