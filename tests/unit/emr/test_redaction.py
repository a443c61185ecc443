"""The one redaction rule (rayref.emr.redaction): a secret planted in any form it covers
never survives, and what a person needs to read (keys, hosts, users, other values) does."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rayref.emr.credentials import CredentialsFileProvider
from rayref.emr.errors import CredentialsError
from rayref.emr.redaction import (
    MASK,
    is_secret_key,
    redact_json_text,
    redact_strings,
    redact_text,
)
from rayref.emr.secrets import RuntimeEnv, SecretUrl, redact_url
from tests.support.leakscan import (
    PLANT_KEYS,
    LeakScanner,
    distinctive,
    planted_job_fields,
    runtime_env_json,
    text_forms,
)

# What a secret may hold where the rule must find its end: in a URL it is percent-encoded
# beyond these, and in free text it ends at a space, `&`, `;`, `,` or a quote.
SECRET_ALPHABET = string.ascii_letters + string.digits + "-._~+%!*$="
secret_values = st.text(SECRET_ALPHABET, min_size=8, max_size=40).map(lambda s: f"S3CR{s}")
surrounding = st.text(string.ascii_letters + string.digits + " .,()-", max_size=30)


def scan(value: str, text: str) -> list[str]:
    scanner = LeakScanner()
    scanner.add("planted", value)
    return [str(f) for f in scanner.scan_text("redacted", text)]


@settings(max_examples=150, deadline=None)
@given(
    value=secret_values,
    key=st.sampled_from(PLANT_KEYS),
    before=surrounding,
    after=surrounding,
)
def test_a_secret_in_any_text_form_never_survives(
    value: str, key: str, before: str, after: str
) -> None:
    for form, text in text_forms(value, key).items():
        shown = redact_text(f"{before} {text} {after}")
        assert not scan(value, shown), (form, shown)
        assert MASK in shown, form


@settings(max_examples=100, deadline=None)
@given(value=secret_values)
def test_a_secret_anywhere_in_a_runtime_env_never_survives(value: str) -> None:
    shown = RuntimeEnv(runtime_env_json(value)).redacted()

    assert not scan(value, shown)
    env = json.loads(shown)
    # what a person needs stays: the structure, the hosts, the packages, the users
    assert env["working_dir"] == f"https://ci:{MASK}@artifacts.example/job.zip"
    assert env["pip"]["packages"][1] == "numpy"
    assert env["env_vars"] == {"ANY_NAME": MASK}
    assert env["config"] == {"setup_timeout_seconds": 60, "auth_token": MASK}


@settings(max_examples=100, deadline=None)
@given(value=secret_values)
def test_planted_job_fields_are_clean_after_the_rule(value: str) -> None:
    fields = planted_job_fields(value)
    shown = redact_strings({k: v for k, v in fields.items() if k != "runtimeEnvJson"})
    shown["runtimeEnvJson"] = redact_json_text(fields["runtimeEnvJson"])
    assert not scan(value, json.dumps(shown))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://user:pw1234@host/x", f"https://user:{MASK}@host/x"),
        # a lone userinfo is commonly a token (https://<token>@github.com)
        ("https://ghp_abcdef@github.com/o/r.git", f"https://{MASK}@github.com/o/r.git"),
        ("redis://default:p@ss@redis:6379/0", f"redis://default:{MASK}@redis:6379/0"),
        ("a;token=xyz;b=1", f"a;token={MASK};b=1"),
        ("Password: hunter2 rest", f"Password: {MASK} rest"),
        ('{"db_password": "two words"}', f'{{"db_password": "{MASK}"}}'),
        ('{\\"token\\":\\"abc\\"}', f'{{\\"token\\":\\"{MASK}\\"}}'),
        ("Authorization: Bearer abc def", f"Authorization: {MASK}"),
        # a key that is no secret (`https:`, `--name`) does not hide the text after it
        ("https://h.example/x?password=v1234", f"https://h.example/x?password={MASK}"),
        ("--name password=abc --token t", f"--name password={MASK} --token {MASK}"),
        ("x-acs-security-token: CAIS", f"x-acs-security-token: {MASK}"),
        (
            "OSS_ACCESS_KEY_SECRET=z GITHUB_TOKEN=t",
            f"OSS_ACCESS_KEY_SECRET={MASK} GITHUB_TOKEN={MASK}",
        ),
    ],
)
def test_each_form_keeps_its_key_and_loses_its_value(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Remote job status is Running.",
        "spec.credentialsSecret: field required",
        "secretName: conn-abc",
        "tokenizer=bert max_tokens=512",
        "https://emr.example/workspace/w-1/job?tab=logs",
        "the Secret ns/creds lacks accessKeySecret",
        f"https://user:{MASK}@host/x?token={MASK}",
        "cannot read /var/run/secrets/oidc/token: No such file or directory",
    ],
)
def test_texts_without_a_secret_are_left_as_they_are(text: str) -> None:
    assert redact_text(text) == text


def test_secret_keys_end_with_a_secret_name() -> None:
    for key in ("token", "REDIS_PASSWORD", "accessKeySecret", "x-acs-security-token", "apikey"):
        assert is_secret_key(key), key
    for key in ("tokenizer", "secretName", "credentialsSecret", "max_tokens", "name"):
        assert not is_secret_key(key), key


def test_urls_lose_every_secret_parameter_and_password() -> None:
    url = "https://u:pw1234@gw.example/d;sig=1?token=t1&password=p1&tab=jobs#token=f"
    assert redact_url(url) == f"https://u:{MASK}@gw.example/d;sig=1?tab=jobs"
    marked = SecretUrl(url.replace("token=t1&", "token=t1;"))
    assert "t1" not in marked.redacted() and "p1" not in marked.redacted()


def test_a_runtime_env_that_is_not_an_object_is_masked_whole() -> None:
    assert redact_json_text("[1, 2]") == MASK
    assert redact_json_text("not json token=x") == MASK
    assert redact_json_text("") == ""


def test_a_distinctive_secret_in_status_like_values_is_masked_and_keys_stay() -> None:
    value = distinctive("wd")
    status = {
        "workingDir": f"https://ci:{value}@h.example/w.zip",
        "connectionSecretName": "conn-1",
        "tags": [{"key": "deploy", "value": f"password={value}"}],
    }
    shown = redact_strings(status)
    assert not scan(value, json.dumps(shown))
    assert shown["connectionSecretName"] == "conn-1"
    assert shown["tags"][0] == {"key": "deploy", "value": f"password={MASK}"}


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ("access_key_secret = {secret}\n", 1),  # before any [section]
        ("[default]\naccess_key_id = LTAI5tX\n{secret}\n", 3),  # neither key = value nor a section
        ("[default]\naccess_key_secret = a\naccess_key_secret = {secret}\n", 3),  # duplicate
    ],
)
async def test_a_malformed_credentials_file_is_named_by_line_never_quoted(
    tmp_path: Path, content: str, line: int
) -> None:
    secret = distinctive("filesecret")
    path = tmp_path / "credentials.ini"
    path.write_text(content.format(secret=secret), encoding="utf-8")

    with pytest.raises(CredentialsError) as caught:
        await CredentialsFileProvider(path).get_credentials()

    assert f"line {line}" in caught.value.message
    assert str(path) in caught.value.message
    assert not scan(secret, str(caught.value))
