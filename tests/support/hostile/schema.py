"""Hypothesis strategies read off the generated CRDs (`crds/*.yaml`): every spec or status
they draw is one the API server accepts, and values sit at the schema's limits (minimum,
maximum, maxLength, maxItems, the CEL size rules) more often than chance would put them.

Deriving them from the YAML instead of restating the limits means a schema change is
followed without touching the harness.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import yaml
from hypothesis import strategies as st

from rayref.api.kinds import PLURALS, SET_PLURALS
from tests.fixtures.paths import CRDS_DIR

# Big enough to reach the interesting sizes, small enough to keep one example in
# hypothesis' buffer; longer values are drawn as one character repeated.
MAX_DRAWN_TEXT = 64
MAX_DRAWN_ITEMS = 3
# The longest free text drawn where the schema sets no maxLength.
UNBOUNDED_TEXT = 2048
# etcd refuses a request above 1.5 MiB; an object this size leaves room for the rest.
MAX_OBJECT_BYTES = 400_000
INT64 = (-(2**63), 2**63 - 1)
# Texts that broke parsers, terminals or log lines somewhere before.
TRICKY_TEXTS = (
    "",
    " ",
    "\n",
    "\r\n",
    "\x00",
    "\u202e",
    "\ufeff",
    "\U0001f600",
    "%s%n",
    "{}",
    "${HOME}",
    "\\",
    '"',
    "' OR 1=1 --",
    "<script>",
    "\u0130\u0131",
    "null",
)
ALL_PLURALS = {**PLURALS, **SET_PLURALS}
_SIZE_RULE = re.compile(r"self\.size\(\)\s*<=\s*(\d+)")
_NOT_IN_RULE = re.compile(r"!\('([^']+)' in self\)")
_KEYS_MATCH = re.compile(r"self\.all\(k, k\.matches\('([^']+)'\)")
_VALUES_MATCH = re.compile(r"self\.all\(k, self\[k\]\.matches\('([^']+)'\)\)")
_TOTAL_SIZE = re.compile(r"self\.map\(k, k\.size\(\) \+ self\[k\]\.size\(\)\)\.sum\(\) <= (\d+)")
# a duration's seconds summed in CEL (submittedWithin): its bound
_DURATION_SUM = re.compile(r"self\.findAll\('\[0-9\]\+\[dhms\]'\).*\.sum\(\) <= (\d+)")
_DURATION_PART = re.compile(r"([0-9]+)([dhms])")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


@functools.cache
def crd_schema(kind: str) -> dict[str, Any]:
    path = CRDS_DIR / f"rayref.io_{ALL_PLURALS[kind]}.yaml"
    crd = yaml.safe_load(path.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return cast(dict[str, Any], schema)


def spec_schema(kind: str) -> dict[str, Any]:
    return cast(dict[str, Any], crd_schema(kind)["properties"]["spec"])


def status_schema(kind: str) -> dict[str, Any]:
    return cast(dict[str, Any], crd_schema(kind)["properties"]["status"])


def at_edges(*edges: int) -> st.SearchStrategy[int]:
    return st.sampled_from(sorted(set(edges)))


def integers(schema: dict[str, Any]) -> st.SearchStrategy[int]:
    low = int(schema.get("minimum", INT64[0]))
    high = int(schema.get("maximum", INT64[1]))
    edges = at_edges(low, high, min(low + 1, high), max(high - 1, low))
    return st.one_of(edges, st.integers(low, high))


def numbers(schema: dict[str, Any]) -> st.SearchStrategy[float]:
    edges = st.sampled_from([0.0, -0.0, 5e-324, 1.7976931348623157e308, -1e308, 2.0**63])
    return st.one_of(edges, st.floats(allow_nan=False, allow_infinity=False))


def rfc3339(low_year: int = 1, high_year: int = 9999) -> st.SearchStrategy[str]:
    """A date-time as the API server's format check accepts it, years 1 to 9999."""
    moments = st.datetimes(
        min_value=datetime(low_year, 1, 1), max_value=datetime(high_year, 12, 31, 23, 59, 59)
    )
    edges = st.sampled_from([datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59)])
    return st.one_of(edges, moments).map(_format_time)


def _format_time(moment: datetime) -> str:
    moment = moment.replace(tzinfo=UTC)
    # strftime drops the leading zeros of years below 1000 on glibc
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}Z"


def texts(low: int = 0, high: int | None = None) -> st.SearchStrategy[str]:
    """Free text: unicode of any plane, tricky pieces, and (when bounded) the longest
    value the schema allows, as one character repeated."""
    drawn_high = MAX_DRAWN_TEXT if high is None else min(high, MAX_DRAWN_TEXT)
    options: list[st.SearchStrategy[str]] = [
        st.text(min_size=low, max_size=max(low, drawn_high)),
        st.sampled_from(TRICKY_TEXTS).filter(lambda t: len(t) >= low),
    ]
    longest = high if high is not None else UNBOUNDED_TEXT
    if longest > drawn_high:
        one_char = st.characters(exclude_categories=["Cs"])
        options.append(one_char.map(lambda c: c * longest))
    return st.one_of(options).filter(lambda t: low <= len(t) <= longest)


def patterned(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
    drawn = st.from_regex(schema["pattern"], fullmatch=True)
    return drawn.filter(
        lambda t: (
            low <= len(t) and (high is None or len(t) <= int(high)) and _duration_ok(schema, t)
        )
    )


def strings(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    if schema.get("format") == "date-time":
        return rfc3339()
    if "pattern" in schema:
        return patterned(schema)
    high = schema.get("maxLength")
    return texts(int(schema.get("minLength", 0)), None if high is None else int(high))


def arrays(schema: dict[str, Any]) -> st.SearchStrategy[list[Any]]:
    item = from_schema(schema["items"])
    low, high = int(schema.get("minItems", 0)), schema.get("maxItems")
    drawn_high = MAX_DRAWN_ITEMS if high is None else min(int(high), MAX_DRAWN_ITEMS)
    keys = schema.get("x-kubernetes-list-map-keys")
    if keys:
        # a list-map holds one item per key
        return st.lists(item, min_size=low, max_size=drawn_high, unique_by=lambda i: i[keys[0]])
    options = [st.lists(item, min_size=low, max_size=max(low, drawn_high))]
    if high is not None and int(high) > drawn_high:
        # the longest list allowed, one item repeated
        options.append(item.map(lambda i: [i] * int(high)))
    return st.one_of(options)


@dataclass(frozen=True)
class MapRules:
    """What the CEL rules of a map ask: at most `most` entries, none of `banned`, keys and
    values matching a pattern, keys and values together at most `total` characters."""

    most: int | None = None
    banned: frozenset[str] = frozenset()
    keys: str | None = None
    values: str | None = None
    total: int | None = None


def _rule_texts(schema: dict[str, Any]) -> list[str]:
    # folded YAML puts line breaks inside long rules
    rules = schema.get("x-kubernetes-validations") or []
    return [" ".join(str(rule.get("rule", "")).split()) for rule in rules]


def map_rules(schema: dict[str, Any]) -> MapRules:
    most = keys = values = total = None
    banned: set[str] = set()
    for text in _rule_texts(schema):
        if size := _SIZE_RULE.fullmatch(text):
            most = int(size.group(1))
        if key := _NOT_IN_RULE.fullmatch(text):
            banned.add(key.group(1))
        if matched := _KEYS_MATCH.match(text):
            keys = matched.group(1)
        if matched := _VALUES_MATCH.match(text):
            values = matched.group(1)
        if matched := _TOTAL_SIZE.fullmatch(text):
            total = int(matched.group(1))
    return MapRules(most, frozenset(banned), keys, values, total)


LABEL_KEY = (
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)


def _key_ok(rules: MapRules, key: str) -> bool:
    # the rule's own bound on the prefix: at most 253 characters before the '/'
    return key not in rules.banned and ("/" not in key or key.index("/") <= 253)


def _map_values(schema: dict[str, Any], rules: MapRules) -> st.SearchStrategy[Any]:
    item = schema["additionalProperties"]
    if rules.values is None:
        return from_schema(item)
    longest = int(item.get("maxLength", 10**6))
    return st.from_regex(rules.values, fullmatch=True).filter(lambda v: len(v) <= longest)


def maps(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A map (labels, annotations, tags). Where the CEL rules leave keys free, they are
    label keys or free text, so that a set's template can hold what its refs cannot carry."""
    rules = map_rules(schema)
    free_keys = st.one_of(st.from_regex(LABEL_KEY, fullmatch=True), texts(1, 300))
    keys = (st.from_regex(rules.keys, fullmatch=True) if rules.keys else free_keys).filter(
        lambda k: _key_ok(rules, k)
    )
    values = _map_values(schema, rules)
    drawn = st.dictionaries(keys, values, max_size=min(rules.most or 4, 4))
    if rules.most is not None and rules.most > 4:
        # exactly as many entries as the rule allows
        full = st.lists(keys, min_size=rules.most, max_size=rules.most, unique=True)
        drawn = st.one_of(drawn, st.tuples(full, values).map(lambda p: dict.fromkeys(p[0], p[1])))
    total = rules.total
    if total is None:
        return drawn
    return drawn.filter(lambda m: sum(len(k) + len(str(v)) for k, v in m.items()) <= total)


def _duration_ok(schema: dict[str, Any], text: str) -> bool:
    for rule in _rule_texts(schema):
        if bound := _DURATION_SUM.fullmatch(rule):
            seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
            if seconds > int(bound.group(1)):
                return False
    return True


def objects(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    properties = schema.get("properties")
    if properties is None:
        if "additionalProperties" in schema:
            return maps(schema)
        return st.just({})
    required = set(schema.get("required") or [])
    return st.fixed_dictionaries(
        {name: from_schema(sub) for name, sub in properties.items() if name in required},
        optional={
            name: from_schema(sub) for name, sub in properties.items() if name not in required
        },
    )


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values the schema (a structural OpenAPI v3 schema of a CRD) accepts."""
    if "enum" in schema:
        return st.sampled_from(list(schema["enum"]))
    kind = schema.get("type")
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return integers(schema)
    if kind == "number":
        return numbers(schema)
    if kind == "string":
        return strings(schema)
    if kind == "array":
        return arrays(schema)
    if kind == "object":
        return objects(schema)
    raise ValueError(f"no strategy for the schema type {kind!r}")


def _storable(value: dict[str, Any]) -> bool:
    return len(json.dumps(value, ensure_ascii=False).encode()) <= MAX_OBJECT_BYTES


def specs(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    """A spec of `kind` that the CRD accepts."""
    return objects(spec_schema(kind)).filter(_storable)


def statuses(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    """A status of `kind` that the CRD accepts (written through the status subresource)."""
    return objects(status_schema(kind)).filter(_storable)
