"""Pydantic JSON schema -> structural OpenAPI v3 schema, as a CRD version requires.

Structural means: every node has a type, no $ref, no anyOf/oneOf on data, and
`additionalProperties` never beside `properties`. A keyword this converter does not know
raises, so a model change that would produce an invalid CRD fails at generation time.
"""

from __future__ import annotations

from typing import Any

# Keywords copied as they are (after their values are converted where they hold schemas).
_KEPT = frozenset(
    {
        "type",
        "format",
        "description",
        "enum",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
        "maxProperties",
        "default",
        "required",
        "nullable",
        "x-kubernetes-validations",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type",
    }
)
_DROPPED = frozenset({"title"})


class SchemaError(ValueError):
    """The model uses a JSON-schema feature that has no structural equivalent."""


def structural_schema(json_schema: dict[str, Any]) -> dict[str, Any]:
    """Convert a pydantic `model_json_schema()` (validation mode, by alias)."""
    definitions: dict[str, Any] = json_schema.get("$defs", {})
    root = {k: v for k, v in json_schema.items() if k != "$defs"}
    return _convert(root, definitions, path="$")


def _resolve(node: dict[str, Any], definitions: dict[str, Any], path: str) -> dict[str, Any]:
    """Inline a $ref; keywords beside it (a field's description) win over the target's."""
    ref = node.get("$ref")
    if ref is None:
        return node
    prefix = "#/$defs/"
    if not isinstance(ref, str) or not ref.startswith(prefix):
        raise SchemaError(f"{path}: unsupported $ref {ref!r}")
    target = definitions.get(ref[len(prefix) :])
    if target is None:
        raise SchemaError(f"{path}: dangling $ref {ref!r}")
    merged = dict(_resolve(target, definitions, path))
    merged.update({k: v for k, v in node.items() if k != "$ref"})
    return merged


def _drop_null(node: dict[str, Any], path: str) -> dict[str, Any]:
    """`X | None` becomes plain X: an absent field is how a status says "unknown"."""
    variants = node.get("anyOf")
    if variants is None:
        return node
    others = [v for v in variants if v != {"type": "null"}]
    if len(others) != 1:
        raise SchemaError(f"{path}: anyOf with {len(others)} non-null variants")
    merged = {k: v for k, v in node.items() if k != "anyOf"}
    return {**others[0], **merged}


# What `_keyword` returns for a keyword the CRD schema leaves out.
_OMIT = object()


def _convert(node: dict[str, Any], definitions: dict[str, Any], path: str) -> dict[str, Any]:
    node = _drop_null(_resolve(node, definitions, path), path)
    node = _resolve(node, definitions, path)  # an anyOf variant may itself be a $ref
    out: dict[str, Any] = {}
    for key, value in node.items():
        converted = _keyword(key, value, definitions, path)
        if converted is not _OMIT:
            out[key] = converted
    return _checked(out, path)


def _keyword(key: str, value: Any, definitions: dict[str, Any], path: str) -> Any:
    """One keyword's value in the CRD schema, or `_OMIT`."""
    if key in _DROPPED:
        return _OMIT
    if key == "properties":
        return {name: _convert(sub, definitions, f"{path}.{name}") for name, sub in value.items()}
    if key == "items":
        return _convert(value, definitions, f"{path}[]")
    if key == "additionalProperties":
        if value is False:
            return _OMIT  # pruning already drops unknown fields
        if value is True:
            raise SchemaError(f"{path}: free-form object")
        return _convert(value, definitions, f"{path}.*")
    if key == "description":
        # Docstrings wrap at the source width; kubectl explain wraps on its own.
        return " ".join(value.split())
    if key == "default":
        return _OMIT if value is None else value
    if key in _KEPT:
        return value
    raise SchemaError(f"{path}: unsupported keyword {key!r}")


def _checked(out: dict[str, Any], path: str) -> dict[str, Any]:
    if "type" not in out:
        raise SchemaError(f"{path}: no type")
    if out["type"] == "object" and "properties" in out and "additionalProperties" in out:
        raise SchemaError(f"{path}: both properties and additionalProperties")
    if out.get("required") == []:
        del out["required"]
    return out
