"""One-line descriptions of invalid input, naming the field, for errors and logs.

Scenario files and control-API bodies are both validated by pydantic; this turns its
errors into `workspaces[0].jobs[2].script.runningSeconds: Input should be ...`. Keys
and values that came from the input are cut, so a 10,000-character key cannot flood
an error line.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

MAX_SHOWN = 3
_MAX_KEY = 60
_MAX_MESSAGE = 300


def cut(text: str, limit: int) -> str:
    """`text` on one line, at most `limit` characters (an ellipsis marks the cut)."""
    flat = " ".join(text.split()) if "\n" in text or "\r" in text else text
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def field_path(loc: Sequence[int | str]) -> str:
    """`a.b[0].c` for a pydantic location; empty for the whole input."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            key = cut(part, _MAX_KEY)
            path += f".{key}" if path else key
    return path


def _message(error: dict[str, object]) -> str:
    if error.get("type") == "model_type":
        return "Input should be an object"
    text = str(error.get("msg", "invalid"))
    # pydantic prefixes messages of our own ValueErrors
    return text.removeprefix("Value error, ")


def _under(prefix: str, path: str) -> str:
    if not prefix or not path:
        return prefix or path
    return prefix + path if path.startswith("[") else f"{prefix}.{path}"


def first_field(exc: ValidationError, prefix: str = "") -> str:
    """The field of the first problem (below `prefix`); "" when the whole input is wrong."""
    errors = exc.errors(include_url=False)
    return _under(prefix, field_path(errors[0]["loc"]) if errors else "")


def describe_validation_error(exc: ValidationError, whole: str = "", prefix: str = "") -> str:
    """`field: problem; field: problem (+N more)`, each field below `prefix`.

    `whole` names the input itself when a problem is of the root and there is no prefix.
    """
    errors = exc.errors(include_url=False)
    parts = []
    for error in errors[:MAX_SHOWN]:
        where = _under(prefix, field_path(error["loc"])) or whole
        message = _message(dict(error))
        parts.append(f"{where}: {message}" if where else message)
    more = len(errors) - len(parts)
    text = "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")
    return cut(text, _MAX_MESSAGE * MAX_SHOWN)
