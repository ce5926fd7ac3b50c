"""JSON Schemas from real coding agents become Schemas Gemini's `parameters` accepts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.emulator_harness import find_specs_dir
from torouter.protocols.gemini_schema import to_gemini_schema, to_json_schema

SPECS = find_specs_dir()
_SCHEMA = json.loads((SPECS / "gemini/discovery-v1beta.json").read_text())["schemas"]["Schema"]
ALLOWED = set(_SCHEMA["properties"])
TYPES = set(_SCHEMA["properties"]["type"]["enum"])


def _tools(client: str) -> list[tuple[str, dict[str, Any]]]:
    tools = json.loads((SPECS / f"clients/{client}/turn-1.json").read_text())["body"]["tools"]
    out: list[tuple[str, dict[str, Any]]] = []
    for t in tools:
        for tool in t.get("tools", [t]):  # Codex's namespace tool nests its functions
            schema = tool.get("input_schema") or tool.get("parameters")
            if isinstance(schema, dict):
                out.append((f"{client}:{tool['name']}", schema))
    return out


AGENT_TOOLS = _tools("claude-code") + _tools("codex")


def assert_gemini_schema(node: Any, path: str = "$") -> None:
    assert isinstance(node, dict), path
    extra = set(node) - ALLOWED
    assert not extra, f"{path}: keys Gemini refuses: {extra}"
    if "type" in node:
        assert node["type"] in TYPES, f"{path}: type {node['type']!r}"
    for name, sub in (node.get("properties") or {}).items():
        assert_gemini_schema(sub, f"{path}.properties.{name}")
    if "items" in node:
        assert_gemini_schema(node["items"], f"{path}.items")
    for k, sub in enumerate(node.get("anyOf") or []):
        assert_gemini_schema(sub, f"{path}.anyOf[{k}]")
    if "required" in node:
        assert set(node["required"]) <= set(node.get("properties") or {}), path
    if "enum" in node:
        assert all(isinstance(v, str) for v in node["enum"]), path


def test_both_agents_declare_tools() -> None:
    names = [n for n, _ in AGENT_TOOLS]
    assert len([n for n in names if n.startswith("claude-code:")]) == 24
    assert "codex:close_agent" in names  # from inside the namespace tool


@pytest.mark.parametrize(("name", "schema"), AGENT_TOOLS, ids=[n for n, _ in AGENT_TOOLS])
def test_agent_tool_schema_becomes_a_gemini_schema(name: str, schema: dict[str, Any]) -> None:
    out = to_gemini_schema(schema)
    assert_gemini_schema(out)
    assert out["type"] == "OBJECT"
    assert set(out.get("properties", {})) == set(schema.get("properties", {}))


def test_refs_into_defs_are_inlined() -> None:
    schema = {
        "type": "object",
        "properties": {"where": {"$ref": "#/$defs/Place"}, "old": {"$ref": "#/definitions/Old"}},
        "$defs": {
            "Place": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        },
        "definitions": {"Old": {"type": "integer", "format": "int64"}},
    }
    out = to_gemini_schema(schema)
    assert out["properties"]["where"] == {
        "type": "OBJECT",
        "properties": {"city": {"type": "STRING"}},
        "required": ["city"],
    }
    assert out["properties"]["old"] == {"type": "INTEGER", "format": "int64"}
    assert_gemini_schema(out)


def test_recursive_refs_stop_after_three_levels() -> None:
    schema = {
        "$defs": {"Node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}}}},
        "$ref": "#/$defs/Node",
    }
    out = to_gemini_schema(schema)
    depth, node = 0, out
    while "child" in node.get("properties", {}):
        node, depth = node["properties"]["child"], depth + 1
    assert node == {"type": "OBJECT"}
    assert depth == 3  # root and 2 children inlined (3 references), the 3rd child a plain object
    assert_gemini_schema(out)


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": ["string", "null"]}, {"type": "STRING", "nullable": True}),
        ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, {"type": "INTEGER", "nullable": True}),
        (
            {"oneOf": [{"type": "string"}, {"type": "number"}]},
            {"anyOf": [{"type": "STRING"}, {"type": "NUMBER"}]},
        ),
        ({"type": ["string", "integer"]}, {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]}),
        ({"const": "fixed"}, {"type": "STRING", "enum": ["fixed"]}),
        ({"type": "string", "enum": ["a", None]}, {"type": "STRING", "enum": ["a"], "nullable": True}),
        ({"type": "integer", "enum": [1, 2]}, {"type": "INTEGER", "description": "One of: 1, 2."}),
        ({"type": "number", "exclusiveMinimum": 0}, {"type": "NUMBER", "minimum": 0}),
        ({"type": "string", "format": "uri"}, {"type": "STRING"}),
        ({"type": "string", "format": "date-time"}, {"type": "STRING", "format": "date-time"}),
        (
            {"type": "array", "items": {"type": "string"}, "minItems": 1},
            {"type": "ARRAY", "items": {"type": "STRING"}, "minItems": 1},
        ),
        ({"properties": {}, "additionalProperties": False}, {"properties": {}, "type": "OBJECT"}),
        ({"type": "object", "required": ["gone"], "properties": {}}, {"type": "OBJECT", "properties": {}}),
    ],
)
def test_json_schema_keywords_map_onto_gemini(schema: dict[str, Any], expected: dict[str, Any]) -> None:
    assert to_gemini_schema(schema) == expected


def test_all_of_merges_properties_and_required() -> None:
    schema = {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"properties": {"b": {"type": "boolean"}}, "required": ["b"]},
        ],
        "description": "both",
    }
    assert to_gemini_schema(schema) == {
        "type": "OBJECT",
        "description": "both",
        "properties": {"a": {"type": "STRING"}, "b": {"type": "BOOLEAN"}},
        "required": ["a", "b"],
    }


@pytest.mark.parametrize(
    "odd", [None, 3, "x", [], {"$ref": "#/nowhere"}, {"type": 5}, {"properties": []}, {"items": [True]}]
)
def test_odd_input_never_raises(odd: Any) -> None:
    assert_gemini_schema(to_gemini_schema(odd))


def test_gemini_schema_reads_back_as_json_schema() -> None:
    gemini = {"type": "OBJECT", "properties": {"x": {"type": "STRING", "nullable": True}}, "required": ["x"]}
    back = to_json_schema(gemini)
    assert back == {"type": "object", "properties": {"x": {"type": ["string", "null"]}}, "required": ["x"]}
    assert to_gemini_schema(back) == gemini
