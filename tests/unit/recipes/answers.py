"""SDK-complete answers and list items, and a way to take one key out of them."""

from __future__ import annotations

import copy
from typing import Any

from tests.support.sdk_fields import body_model, filled

# The SDK fills every string with "s"; these keys are JSON text the mirror parses, so a
# placeholder would read as "absent" and hide whether the key is mirrored.
_JSON_TEXT = {
    "entrypointResources": '{"accelerator": 1}',
    "runtimeEnvJson": '{"pip": ["numpy"], "env_vars": {"A": "b"}}',
    "metadataJson": '{"team": "a"}',
    "extraParam": '{"x": 1}',
}


def full_answer(operation: str) -> dict[str, Any]:
    """An answer of `operation` with every key the SDK's model knows, nested ones too."""
    answer: dict[str, Any] = filled(body_model(operation)).to_map()
    for key, text in _JSON_TEXT.items():
        if key in answer:
            answer[key] = text
    return answer


def without(value: dict[str, Any], path: str) -> dict[str, Any]:
    """A copy of `value` without the key at `path` (`a.b`, `a[].b` for every list item)."""
    copied = copy.deepcopy(value)
    _drop(copied, path.split("."))
    return copied


def _drop(value: Any, parts: list[str]) -> None:
    if not isinstance(value, dict) or not parts:
        return
    head, rest = parts[0], parts[1:]
    key = head.removesuffix("[]")
    if key not in value:
        return
    if not rest:
        del value[key]
        return
    for item in value[key] if head.endswith("[]") else [value[key]]:
        _drop(item, rest)
