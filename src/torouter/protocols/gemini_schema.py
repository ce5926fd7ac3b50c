"""JSON Schema <-> Gemini's `Schema` (the OpenAPI subset `functionDeclarations[].parameters` takes).

Gemini answers 400 "Unknown name" for any keyword outside its Schema object (a capture shows
`exclusiveMinimum` refused), so `to_gemini_schema` keeps only the fields the discovery document
lists, and rewrites the rest where it has a meaning Gemini can hold:
- types upper-cased; `type: [X, "null"]` -> X + nullable (several types -> anyOf);
- `const` -> a one-value enum; string enums only (other enums become a description hint);
- `$ref` into `$defs`/`definitions` (any `#/...` pointer) inlined; past 3 nested references the
  schema becomes a plain OBJECT, so recursive schemas stay finite;
- `allOf` merged into one schema; `oneOf` -> anyOf; an anyOf branch `{type: null}` -> nullable;
- `exclusiveMinimum`/`exclusiveMaximum` (numbers) -> minimum/maximum;
- `format` kept only where Gemini gives it a meaning (enum, date-time; int32/int64; float/double);
- `required` pruned to the properties that exist; a missing type is inferred from properties/items.
Everything else (`additionalProperties`, `$schema`, `propertyNames`, `patternProperties`,
`if/then/else`, `examples`, ...) is dropped. Both functions are pure and never raise.
"""

from __future__ import annotations

from typing import Any

import orjson

ALLOWED = frozenset(
    {
        "anyOf", "default", "description", "enum", "example", "format", "items", "maxItems",
        "maxLength", "maxProperties", "maximum", "minItems", "minLength", "minProperties",
        "minimum", "nullable", "pattern", "properties", "propertyOrdering", "required", "title",
        "type",
    }
)  # fmt: skip
TYPES = frozenset({"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"})
_FORMATS = {"STRING": {"enum", "date-time"}, "INTEGER": {"int32", "int64"}, "NUMBER": {"float", "double"}}
_COPY = ("description", "title", "default", "example", "pattern", "minimum", "maximum")
_COUNTS = ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties")
MAX_REF_DEPTH = 3
_MAX_DEPTH = 64  # plain nesting guard: no stack overflow on pathological input


def to_gemini_schema(schema: Any) -> dict[str, Any]:
    """A Gemini `Schema` for a JSON Schema (rules in the module docstring)."""
    if not isinstance(schema, dict):
        return {}
    return _convert(schema, schema, 0, 0)


def _resolve(ref: Any, root: dict[str, Any]) -> dict[str, Any] | None:
    if not isinstance(ref, str) or not ref.startswith("#"):
        return None
    node: Any = root
    for token in ref[1:].split("/"):
        if not token:
            continue
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            node = node.get(token)
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return None
    return node if isinstance(node, dict) else None


def _flatten(node: dict[str, Any], root: dict[str, Any], refs: int) -> tuple[dict[str, Any], int]:
    """`node` with its $ref and allOf folded in (raw JSON Schema still), and the $ref depth used."""
    if "$ref" in node:
        if refs >= MAX_REF_DEPTH:
            return {"type": "object"}, refs
        target = _resolve(node["$ref"], root)
        rest = {k: v for k, v in node.items() if k != "$ref"}
        if target is None:
            return rest, refs
        node, refs = {**target, **rest}, refs + 1  # siblings of $ref override the target
        return _flatten(node, root, refs)
    subs = node.get("allOf")
    if isinstance(subs, list):
        merged = {k: v for k, v in node.items() if k != "allOf"}
        for sub in subs:
            if not isinstance(sub, dict):
                continue
            sub, refs = _flatten(sub, root, refs)
            for k, v in sub.items():
                if k == "properties" and isinstance(v, dict):
                    merged["properties"] = {**v, **(merged.get("properties") or {})}
                elif k == "required" and isinstance(v, list):
                    merged["required"] = list(dict.fromkeys([*(merged.get("required") or []), *v]))
                else:
                    merged.setdefault(k, v)
        return merged, refs
    return node, refs


def _convert(node: dict[str, Any], root: dict[str, Any], refs: int, depth: int) -> dict[str, Any]:
    if depth > _MAX_DEPTH:
        return {"type": "OBJECT"}
    node, refs = _flatten(node, root, refs)
    out: dict[str, Any] = {}
    nullable = node.get("nullable") is True

    raw_type = node.get("type")
    types = [raw_type] if isinstance(raw_type, str) else raw_type if isinstance(raw_type, list) else []
    types = [t.upper() for t in types if isinstance(t, str) and t.upper() in TYPES]
    if "NULL" in types and len(types) > 1:
        types.remove("NULL")
        nullable = True
    if len(types) > 1:  # ["string", "number"]: one branch per type, each with this node's keywords
        branches = [_convert({**node, "type": t.lower()}, root, refs, depth + 1) for t in types]
        out["anyOf"] = branches
    elif types:
        out["type"] = types[0]

    for key in ("anyOf", "oneOf"):
        subs = node.get(key)
        if isinstance(subs, list) and "anyOf" not in out:
            branches = []
            for sub in subs:
                if isinstance(sub, dict) and sub.get("type") == "null" and len(sub) == 1:
                    nullable = True
                    continue
                if isinstance(sub, dict):
                    branches.append(_convert(sub, root, refs, depth + 1))
            if len(branches) == 1 and "type" not in out:
                out.update({k: v for k, v in branches[0].items() if k not in out})
            elif branches:
                out["anyOf"] = branches

    if "properties" in node and isinstance(node["properties"], dict):
        out["properties"] = {
            str(name): _convert(sub if isinstance(sub, dict) else {}, root, refs, depth + 1)
            for name, sub in node["properties"].items()
        }
        if "anyOf" not in out:
            out.setdefault("type", "OBJECT")
    items = node.get("items")
    if isinstance(items, list):
        items = items[0] if items else None  # tuple form: Gemini has one item schema
    if items is None and isinstance(node.get("prefixItems"), list) and node["prefixItems"]:
        items = node["prefixItems"][0]
    if isinstance(items, dict):
        out["items"] = _convert(items, root, refs, depth + 1)
        if "anyOf" not in out:
            out.setdefault("type", "ARRAY")

    for key in _COPY:
        value = node.get(key)
        if value is None:
            continue
        if key in ("minimum", "maximum") and (not isinstance(value, int | float) or isinstance(value, bool)):
            continue
        if key in ("description", "title", "pattern") and not isinstance(value, str):
            continue
        out[key] = value
    for key, target in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = node.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and target not in out:
            out[target] = value
    for key in _COUNTS:
        value = node.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            out[key] = value

    _enum(node, out)
    fmt = node.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS.get(out.get("type", ""), ()):
        out["format"] = fmt
    if isinstance(node.get("required"), list) and isinstance(out.get("properties"), dict):
        required = [r for r in node["required"] if isinstance(r, str) and r in out["properties"]]
        if required:
            out["required"] = list(dict.fromkeys(required))
    order = node.get("propertyOrdering")
    if isinstance(order, list) and isinstance(out.get("properties"), dict):
        out["propertyOrdering"] = [p for p in order if isinstance(p, str) and p in out["properties"]]
    if nullable:
        out["nullable"] = True
    return out


def _enum(node: dict[str, Any], out: dict[str, Any]) -> None:
    values = node.get("enum")
    if not isinstance(values, list) and "const" in node:
        values = [node["const"]]
    if not isinstance(values, list):
        return
    if None in values:
        out["nullable"] = True
        values = [v for v in values if v is not None]
    if values and all(isinstance(v, str) for v in values):
        out["enum"] = values
        out.setdefault("type", "STRING")
    elif values:  # Gemini's enum is for strings only: say it in words instead
        hint = "One of: " + ", ".join(orjson.dumps(v).decode() for v in values) + "."
        out["description"] = f"{out['description']} {hint}" if out.get("description") else hint


def to_json_schema(schema: Any) -> Any:
    """A Gemini `Schema` read as JSON Schema: lower-case types, nullable -> a "null" type."""
    if isinstance(schema, list):
        return [to_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            out["type"] = value.lower()
        elif key == "properties" and isinstance(value, dict):
            out["properties"] = {k: to_json_schema(v) for k, v in value.items()}
        elif key in ("items", "anyOf"):
            out[key] = to_json_schema(value)
        elif key == "nullable" or (key == "format" and value == "enum"):
            continue
        else:
            out[key] = value
    if schema.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out
