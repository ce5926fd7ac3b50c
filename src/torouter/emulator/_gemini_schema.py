"""Gemini's check of tool `parameters`: an OpenAPI subset, rejected field by field like the real API.

The allowed fields are those of the `Schema` object in discovery-v1beta.json; `parametersJsonSchema`
takes full JSON Schema and is not checked.
"""

from __future__ import annotations

from typing import Any

from torouter.emulator._call import VendorError

SCHEMA_FIELDS = frozenset(
    {
        "anyOf", "default", "description", "enum", "example", "format", "items", "maxItems", "maxLength",
        "maxProperties", "maximum", "minItems", "minLength", "minProperties", "minimum", "nullable", "pattern",
        "properties", "propertyOrdering", "required", "title", "type",
    }
)  # fmt: skip
# The proto parser also takes the snake_case spellings of the same fields.
_SNAKE = {"any_of": "anyOf", "max_items": "maxItems", "min_items": "minItems", "max_length": "maxLength",
          "min_length": "minLength", "max_properties": "maxProperties", "min_properties": "minProperties",
          "property_ordering": "propertyOrdering"}  # fmt: skip
TYPES = frozenset({"TYPE_UNSPECIFIED", "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"})
DECLARATION_FIELDS = frozenset(
    {"behavior", "description", "name", "parameters", "parametersJsonSchema", "response", "responseJsonSchema",
     "parameters_json_schema", "response_json_schema"}
)  # fmt: skip


def _unknown(name: str, path: str) -> str:
    return f"Invalid JSON payload received. Unknown name \"{name}\" at '{path}': Cannot find field."


def schema_violations(schema: Any, path: str) -> list[tuple[str, str]]:
    """(field path, description) for each problem, in the order the API reports them."""
    if not isinstance(schema, dict):
        return [(path, f"Invalid JSON payload received. Expected an object at '{path}'.")]
    found: list[tuple[str, str]] = []
    for key, value in schema.items():
        name = _SNAKE.get(key, key)
        if name not in SCHEMA_FIELDS:
            found.append((path, _unknown(key, path)))
        elif name == "type":
            if isinstance(value, list):
                found.append((f"{path}.type", f"Invalid JSON payload received. Proto field is not repeating, cannot start list at '{path}.type'."))  # fmt: skip
            elif not isinstance(value, str) or value.upper() not in TYPES:
                found.append((f"{path}.type", f"Invalid value at '{path}.type' (type.googleapis.com/google.ai.generativelanguage.v1beta.Type), \"{value}\""))  # fmt: skip
        elif name == "properties" and isinstance(value, dict):
            for index, sub in enumerate(value.values()):
                found.extend(schema_violations(sub, f"{path}.properties[{index}].value"))
        elif name == "items":
            found.extend(schema_violations(value, f"{path}.items"))
        elif name == "anyOf" and isinstance(value, list):
            for index, sub in enumerate(value):
                found.extend(schema_violations(sub, f"{path}.any_of[{index}]"))
    return found


def check_tools(tools: Any) -> None:
    """Raise Gemini's 400 INVALID_ARGUMENT when a function declaration's `parameters` is not a Schema."""
    found: list[tuple[str, str]] = []
    for t_index, tool in enumerate(tools if isinstance(tools, list) else []):
        if not isinstance(tool, dict):
            continue
        declarations = tool.get("functionDeclarations", tool.get("function_declarations")) or []
        for d_index, declaration in enumerate(declarations):
            base = f"tools[{t_index}].function_declarations[{d_index}]"
            for key in declaration:
                if key not in DECLARATION_FIELDS:
                    found.append((base, _unknown(key, base)))
            if "parameters" in declaration:
                found.extend(schema_violations(declaration["parameters"], f"{base}.parameters"))
    if found:
        raise VendorError(
            400,
            "\n".join(description for _, description in found),
            details=[
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [{"field": field, "description": text} for field, text in found],
                }
            ],
        )
