"""The fields the official SDK's response models know, as JSON paths, and those of an answer.

The SDK (`alibabacloud-emr-serverless-spark20230808`) is generated from the API's own
metadata, so its response models are the fullest statement of what an answer may hold.
A path names a key by where it sits: `headSpec.gftConfig.redisPassword`, list items with
`[]` (`workerSpec[].env`). The SDK's classes are walked through their constructors'
annotations; each class is filled with a value of every field and serialised with the
SDK's own `to_map`, so the key names are the SDK's, not a guess from the Python names.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Iterable
from typing import Any

from alibabacloud_emr_serverless_spark20230808 import models as sdk_models
from darabonba.model import DaraModel

OPERATIONS = ("GetRayJob", "GetRayCluster", "ListRayJob", "ListRayCluster")
_SCALARS: dict[Any, Any] = {str: "s", int: 1, bool: True, float: 1.5}


def body_model(operation: str) -> type[DaraModel]:
    model: type[DaraModel] = getattr(sdk_models, f"{operation}ResponseBody")
    return model


def _value(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is list:
        return [_value(typing.get_args(annotation)[0])]
    if origin is dict:
        return {"key": "value"}
    if isinstance(annotation, type) and issubclass(annotation, DaraModel):
        return filled(annotation)
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    raise TypeError(f"no sample value for the SDK type {annotation!r}")


def filled(model: type[DaraModel]) -> DaraModel:
    """An instance of an SDK model with every field (and every nested field) set."""
    hints = typing.get_type_hints(model.__init__, vars(inspect.getmodule(model)))
    values = {name: _value(hint) for name, hint in hints.items() if name != "return"}
    return model(**values)


def paths(value: Any, prefix: str = "") -> set[str]:
    """Every key path of a JSON value."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            found.add(path)
            found |= paths(item, path)
    elif isinstance(value, list):
        for item in value:
            found |= paths(item, f"{prefix}[]")
    return found


def known_paths(operation: str) -> set[str]:
    """Every key path the SDK's model of the operation's answer knows."""
    return paths(filled(body_model(operation)).to_map())


def union_paths(answers: Iterable[Any]) -> set[str]:
    found: set[str] = set()
    for answer in answers:
        found |= paths(answer)
    return found


def sdk_round_trip(operation: str, answer: dict[str, Any]) -> dict[str, Any]:
    """The answer parsed into the SDK's model and serialised back, as the SDK sees it."""
    mapped: dict[str, Any] = body_model(operation)().from_map(answer).to_map()
    return mapped
