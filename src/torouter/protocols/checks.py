"""Request checks shared by the protocols: only the wording of the error is each protocol's own."""

from __future__ import annotations

from typing import Any

FieldTypes = dict[str, tuple[tuple[type, ...], str]]


def mistyped(body: dict[str, Any], table: FieldTypes) -> tuple[str, str, Any] | None:
    """The first field whose value has the wrong JSON type: (name, what it should be, value)."""
    # A body names a few of the table's fields: look at those, and walk the table in its own
    # order (which decides what is reported first) only when one is wrong.
    # JSON values are of exactly these types: a value of one of its field's types is right, and
    # anything else goes to the walk below, where wrong_type decides.
    for name in body.keys() & table.keys():  # the few fields of the table the body has
        value = body[name]
        if value is not None and type(value) not in table[name][0]:
            break
    else:
        return None
    for name, (types, what) in table.items():
        value = body.get(name)
        if wrong_type(value, types):
            return name, what, value
    return None


def wrong_type(value: Any, types: tuple[type, ...]) -> bool:
    # bool is an int in Python, but not in JSON: true is no valid max_tokens.
    return value is not None and (
        not isinstance(value, types) or (isinstance(value, bool) and bool not in types)
    )
