"""Scan what a test run produced for secrets that must never appear there.

A `LeakScanner` knows the secret values of a scenario (access key secrets, STS tokens,
submit tokens, dashboard tokens, Redis passwords) and looks for each of them, and for
the encodings a careless log line or URL would use (percent-encoded, JSON-escaped,
base64), in every text it is given: statuses, Events, operator logs, metrics, exception
texts. A finding names the source, the secret's label and the offset; it never quotes
the secret itself, so the report of a failing scan is itself safe to print.

Secrets should be distinctive (long, random, with a marker) so that a hit means a leak
and not a coincidence.

Planting: `text_forms(value)` gives a free-text line per form of the redaction rule
(URL userinfo, `?`/`&`/`;` parameters, `key=value`, `key: value`, JSON, `--flag value`, a
pip index URL), `runtime_env_json(value)` a runtimeEnvJson with the secret in each place
a runtime env may hold it, and `planted_job_fields(value)` the GetRayJob fields a user
controls (for the simulator's `create_job(**fields)`), each with the secret in another form.
"""

from __future__ import annotations

import base64
import json
import secrets
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Shorter values could occur by chance in unrelated text.
MIN_SECRET_LENGTH = 12


def distinctive(label: str, length: int = 24) -> str:
    """A secret value no other text of the run can contain by chance."""
    return f"LEAK{label.upper()}{secrets.token_hex(length // 2)}"


@dataclass(frozen=True)
class Finding:
    source: str
    label: str
    encoding: str
    offset: int

    def __str__(self) -> str:
        return f"{self.label} ({self.encoding}) in {self.source} at offset {self.offset}"


def _encodings(value: str) -> dict[str, str]:
    forms = {
        "plain": value,
        "percent-encoded": urllib.parse.quote(value, safe=""),
        "form-encoded": urllib.parse.quote_plus(value),
        "json-escaped": json.dumps(value)[1:-1],
        "base64": base64.b64encode(value.encode()).decode().rstrip("="),
    }
    # An encoding that leaves the value as it was is the plain form again.
    return {name: form for name, form in forms.items() if name == "plain" or form != value}


@dataclass
class LeakScanner:
    secrets: dict[str, str] = field(default_factory=dict)  # label -> value
    sources: list[str] = field(default_factory=list)
    scanned_bytes: int = 0
    findings: list[Finding] = field(default_factory=list)

    def __repr__(self) -> str:  # never the values
        return f"LeakScanner(labels={sorted(self.secrets)}, sources={len(self.sources)})"

    def add(self, label: str, value: str | None) -> None:
        if not value:
            return
        if len(value) < MIN_SECRET_LENGTH:
            raise ValueError(f"secret {label!r} is too short to scan for reliably")
        self.secrets[label] = value

    def add_all(self, values: Mapping[str, str | None]) -> None:
        for label, value in values.items():
            self.add(label, value)

    def scan_text(self, source: str, text: str) -> list[Finding]:
        self.sources.append(source)
        self.scanned_bytes += len(text.encode("utf-8", errors="replace"))
        found: list[Finding] = []
        for label, value in self.secrets.items():
            for encoding, form in _encodings(value).items():
                offset = text.find(form)
                if offset >= 0:
                    found.append(Finding(source, label, encoding, offset))
        self.findings.extend(found)
        return found

    def scan_json(self, source: str, value: Any) -> list[Finding]:
        return self.scan_text(source, json.dumps(value, ensure_ascii=False, default=str))

    def scan_many(self, items: Iterable[tuple[str, Any]]) -> None:
        for source, value in items:
            if isinstance(value, str):
                self.scan_text(source, value)
            else:
                self.scan_json(source, value)

    def assert_clean(self) -> None:
        if self.findings:
            listed = "\n".join(f"  {finding}" for finding in self.findings[:20])
            raise AssertionError(f"{len(self.findings)} secret(s) leaked:\n{listed}")
        if not self.secrets:
            raise AssertionError("the scan had no secrets to look for")


# ---------------------------------------------------------------- planting secret forms
#
# The forms of docs/reliability.md ("What is redacted"): a scenario plants a secret in
# each of them, in the fields a user controls, and scans what the operator produced.

# Key names a planted `key=value` form uses: each must be masked by the redaction rule.
PLANT_KEYS = ("token", "password", "accessKeySecret", "security_token", "api_key", "GITHUB_TOKEN")


def text_forms(value: str, key: str = "password") -> dict[str, str]:
    """Free-text forms carrying `value`: form name -> a line holding it once."""
    return {
        "userinfo": f"see https://deploy:{value}@git.example.com/team/repo.git for the code",
        "userinfo-only": f"clone https://{value}@git.example.com/team/repo.git",
        "query": f"https://host.example/x?{key}={value}&tab=1",
        "ampersand": f"https://host.example/x?tab=1&{key}={value}",
        "semicolon": f"https://host.example/x;{key}={value};tab=1",
        "key=value": f"started with {key}={value} and more",
        "key: value": f"{key}: {value}",
        "json": f'{{"{key}":"{value}","other":1}}',
        "json-spaced": f'{{"{key}": "{value}"}}',
        "flag": f"python main.py --{key.replace('_', '-').lower()} {value} --epochs 3",
        "pip-index": f"--index-url https://pypi:{value}@pypi.example/simple",
    }


def runtime_env_json(value: str) -> str:
    """A `runtimeEnvJson` carrying `value` in every place a runtime env may: a `working_dir`
    URL's userinfo, a pip index URL, an env var, a secret-named member, a `;token=`."""
    return json.dumps(
        {
            "working_dir": f"https://ci:{value}@artifacts.example/job.zip",
            "pip": {
                "packages": [f"--index-url https://pypi:{value}@pypi.example/simple", "numpy"],
            },
            "env_vars": {"ANY_NAME": value},
            "config": {"setup_timeout_seconds": 60, "auth_token": value},
            "py_modules": [f"https://files.example/mods.zip;token={value}"],
        }
    )


def planted_job_fields(value: str) -> dict[str, Any]:
    """GetRayJob fields a user controls, each carrying `value` in another form."""
    return {
        "runtimeEnvJson": runtime_env_json(value),
        "workingDir": f"https://ci:{value}@artifacts.example/work.zip",
        "entrypoint": f"python train.py --api-key {value} password={value}",
        "message": f"fetch failed: https://h.example/a;token={value} (password: {value})",
        "metadataJson": json.dumps({"owner": "team-a", "secret": value}),
    }
