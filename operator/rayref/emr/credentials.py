"""Credentials and where they come from.

Per-namespace credentials are static (a Kubernetes Secret). Operator-wide ones come
from a small async provider chain of our own (environment, RRSA, credentials file,
ECS RAM role); docs/credentials.md explains why not the vendor library.

One idea at about 460 lines: the providers are small classes that share the chain's
contract (async `get_credentials`, caching until shortly before expiry), and splitting
them would scatter that contract over files.
"""

from __future__ import annotations

import asyncio
import configparser
import logging
import os
import re
import stat
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx

from rayref.emr.endpoints import endpoint_problem, shown_endpoint
from rayref.emr.errors import CredentialsError, InvalidCredentialsError

log = logging.getLogger(__name__)

# Temporary credentials are renewed this long before they expire (as the SDK does).
REFRESH_MARGIN = timedelta(minutes=15)
DEFAULT_STS_ENDPOINT = "sts.aliyuncs.com"
DEFAULT_ECS_METADATA_URL = "http://100.100.100.200"
STS_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
ECS_METADATA_TIMEOUT = httpx.Timeout(1.0)


@dataclass(frozen=True)
class Credentials:
    """An AccessKey pair, optionally temporary (STS). The secret parts never show in repr."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # An empty token means "no token" (SIGNING.md section 6).
        if self.security_token == "":
            object.__setattr__(self, "security_token", None)
        # Refused here, when they are built: the id and the token travel in headers, and
        # httpx or h11 would refuse them only at the first request, with an exception
        # no caller expects (a ref's poll crashed on it in a loop, with no status).
        for name in CREDENTIAL_FIELDS:
            value = getattr(self, name)
            if value is None and name == "security_token":
                continue
            problem = credential_problem(value)
            if problem:
                raise InvalidCredentialsError(
                    f"the {name.replace('_', ' ')} {problem}", field=name, problem=problem
                )

    def secret_values(self) -> tuple[str, ...]:
        """What must never be printed (used to scrub server messages)."""
        return tuple(v for v in (self.access_key_secret, self.security_token) if v)


CREDENTIAL_FIELDS = ("access_key_id", "access_key_secret", "security_token")
# far above any real AccessKey or STS token, far below what a header line may carry
MAX_CREDENTIAL_LENGTH = 8192


def credential_problem(value: object) -> str | None:
    """Why a credential value cannot be sent, in a few words that never quote it; None when
    it can: visible ASCII only (it goes into a header or the HMAC key), not empty."""
    if not isinstance(value, str):
        return "is not text"
    if not value:
        return "is empty"
    if len(value) > MAX_CREDENTIAL_LENGTH:
        return f"is longer than {MAX_CREDENTIAL_LENGTH} characters"
    for index, char in enumerate(value):
        if not char.isascii():
            return f"holds a non-ASCII character (at position {index + 1})"
        if not "!" <= char <= "~":
            what = "a space" if char == " " else f"a control character U+{ord(char):04X}"
            return f"holds {what} (at position {index + 1})"
    return None


def build_credentials(
    access_key_id: str,
    access_key_secret: str,
    security_token: str | None = None,
    *,
    names: Mapping[str, str],
) -> Credentials:
    """`Credentials`, or InvalidCredentialsError naming the field by `names` (field ->
    where the value came from: a Secret key, an environment variable, a file line)."""
    try:
        return Credentials(access_key_id, access_key_secret, security_token)
    except InvalidCredentialsError as exc:
        field_name = exc.field or ""
        where = names.get(field_name, field_name.replace("_", " "))
        raise InvalidCredentialsError(
            f"{where} {exc.problem}", field=exc.field, problem=exc.problem
        ) from None


@runtime_checkable
class CredentialsProvider(Protocol):
    async def get_credentials(self) -> Credentials: ...


class StaticCredentialsProvider:
    """Fixed credentials, e.g. read from a Kubernetes Secret."""

    name = "static"

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    async def get_credentials(self) -> Credentials:
        return self._credentials

    def __repr__(self) -> str:
        return f"StaticCredentialsProvider(access_key_id={self._credentials.access_key_id!r})"


ENVIRONMENT_NAMES = {
    "access_key_id": "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "access_key_secret": "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "security_token": "ALIBABA_CLOUD_SECURITY_TOKEN",
}


class EnvironmentCredentialsProvider:
    """ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET / _SECURITY_TOKEN, read on every call."""

    name = "env"

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    async def get_credentials(self) -> Credentials:
        key_id = self._environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID", "")
        secret = self._environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "")
        if not key_id or not secret:
            raise CredentialsError(
                "ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET are not both set"
            )
        token = self._environ.get("ALIBABA_CLOUD_SECURITY_TOKEN") or None
        return build_credentials(key_id, secret, token, names=ENVIRONMENT_NAMES)


class _RefreshingCache:
    """Caches expiring credentials; concurrent callers share one refresh.

    Stale 15 minutes before expiry. If a refresh fails while the old credentials
    have not yet expired, those are served (the next call tries again).
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[tuple[Credentials, datetime]]],
        clock: Callable[[], datetime],
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._cached: tuple[Credentials, datetime] | None = None
        self._lock = asyncio.Lock()
        self.refreshes = 0

    def _fresh(self) -> Credentials | None:
        if self._cached and self._clock() < self._cached[1] - REFRESH_MARGIN:
            return self._cached[0]
        return None

    async def get(self) -> Credentials:
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        async with self._lock:
            fresh = self._fresh()  # someone else may have refreshed while we waited
            if fresh is not None:
                return fresh
            try:
                self._cached = await self._fetch()
                self.refreshes += 1
            except CredentialsError:
                if self._cached and self._clock() < self._cached[1]:
                    log.warning("credentials refresh failed; using the unexpired ones")
                    return self._cached[0]
                raise
            return self._cached[0]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _parse_expiration(value: Any) -> datetime:
    try:
        return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise CredentialsError("temporary credentials carry no valid Expiration") from None


def _temporary_credentials(data: Any, source: str) -> tuple[Credentials, datetime]:
    if not isinstance(data, dict):
        raise CredentialsError(f"{source} answered without credentials")
    try:
        creds = build_credentials(
            str(data["AccessKeyId"]),
            str(data["AccessKeySecret"]),
            str(data["SecurityToken"]),
            names={
                "access_key_id": f"the AccessKeyId of {source}",
                "access_key_secret": f"the AccessKeySecret of {source}",
                "security_token": f"the SecurityToken of {source}",
            },
        )
    except KeyError as missing:
        raise CredentialsError(f"{source} answer lacks {missing.args[0]}") from None
    return creds, _parse_expiration(data.get("Expiration"))


def sts_base_url(environ: Mapping[str, str]) -> str:
    """SIGNING.md section 9.2, plus ALIBABA_CLOUD_STS_ENDPOINT (a host or a URL) to override."""
    explicit = environ.get("ALIBABA_CLOUD_STS_ENDPOINT", "").strip()
    if explicit:
        return explicit.rstrip("/") if "://" in explicit else f"https://{explicit}"
    region = environ.get("ALIBABA_CLOUD_STS_REGION", "").strip()
    if region:
        vpc = environ.get("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "").lower() == "true"
        return f"https://sts{'-vpc' if vpc else ''}.{region}.aliyuncs.com"
    return f"https://{DEFAULT_STS_ENDPOINT}"


# A projected service-account token is about 1 KiB; a JWT is ASCII.
MAX_OIDC_TOKEN_BYTES = 64 << 10


def _read_token(path: Path) -> str:
    """The OIDC token, or a CredentialsError that never quotes the file: a FIFO or
    `/dev/zero` is refused at once instead of waiting or reading for ever."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise CredentialsError(f"the OIDC token file {path} is not a regular file")
            raw = fh.read(MAX_OIDC_TOKEN_BYTES + 1)
    except OSError as exc:
        # "(reason)", not "path: reason": a path ending in `token` followed by `: ...` reads
        # as a `token: value` pair to the redaction rule
        raise CredentialsError(f"cannot read the OIDC token file {path} ({exc.strerror})") from None
    if len(raw) > MAX_OIDC_TOKEN_BYTES:
        raise CredentialsError(
            f"the OIDC token file {path} is larger than {MAX_OIDC_TOKEN_BYTES} bytes"
        )
    try:
        return raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise CredentialsError(
            f"the OIDC token file {path} is not ASCII text (a token is a JWT)"
        ) from None


class RrsaCredentialsProvider:
    """RRSA: the pod's OIDC token -> STS AssumeRoleWithOIDC -> temporary credentials.

    The call is anonymous (the OIDC token is the proof). The token goes in a form
    body rather than the URL, so it cannot end up in access or debug logs of URLs.
    """

    name = "oidc_role_arn"

    def __init__(
        self,
        *,
        role_arn: str,
        oidc_provider_arn: str,
        oidc_token_file: str | Path,
        role_session_name: str | None = None,
        sts_url: str = f"https://{DEFAULT_STS_ENDPOINT}",
        duration_seconds: int = 3600,
        http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.role_arn = role_arn
        self.oidc_provider_arn = oidc_provider_arn
        self.oidc_token_file = Path(oidc_token_file)
        self.role_session_name = role_session_name or f"rayref-{int(time.time())}"
        self.sts_url = sts_url
        self.duration_seconds = max(900, duration_seconds)
        self._http = http_client
        self._cache = _RefreshingCache(self._assume_role, clock)

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str], http_client: httpx.AsyncClient | None = None
    ) -> RrsaCredentialsProvider | None:
        """The provider if all three RRSA variables are set, else None."""
        role_arn = environ.get("ALIBABA_CLOUD_ROLE_ARN", "")
        provider_arn = environ.get("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "")
        token_file = environ.get("ALIBABA_CLOUD_OIDC_TOKEN_FILE", "")
        if not (role_arn and provider_arn and token_file):
            return None
        return cls(
            role_arn=role_arn,
            oidc_provider_arn=provider_arn,
            oidc_token_file=token_file,
            role_session_name=environ.get("ALIBABA_CLOUD_ROLE_SESSION_NAME") or None,
            sts_url=sts_base_url(environ),
            http_client=http_client,
        )

    @property
    def refreshes(self) -> int:
        return self._cache.refreshes

    async def get_credentials(self) -> Credentials:
        return await self._cache.get()

    async def _assume_role(self) -> tuple[Credentials, datetime]:
        # Re-read on every refresh: the kubelet rotates the projected token.
        token = await asyncio.to_thread(_read_token, self.oidc_token_file)
        # checked before httpx sees it: a bad port or a CR/LF would end in an exception
        # of its own (OverflowError, InvalidURL), not in a CredentialsError
        problem = endpoint_problem(self.sts_url)
        if problem:
            raise CredentialsError(
                f"the STS endpoint {shown_endpoint(self.sts_url)} (ALIBABA_CLOUD_STS_ENDPOINT "
                f"or the profile's sts_endpoint) is not usable: {problem}"
            )
        query = {
            "Action": "AssumeRoleWithOIDC",
            "Format": "JSON",
            "Version": "2015-04-01",
            "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        form = {
            "DurationSeconds": str(self.duration_seconds),
            "RoleArn": self.role_arn,
            "OIDCProviderArn": self.oidc_provider_arn,
            "OIDCToken": token,
            "RoleSessionName": self.role_session_name,
        }
        http = self._http or httpx.AsyncClient()
        try:
            response = await http.post(
                f"{self.sts_url}/", params=query, data=form, timeout=STS_TIMEOUT
            )
        except httpx.HTTPError as exc:
            raise CredentialsError(
                f"STS AssumeRoleWithOIDC at {self.sts_url} failed: {type(exc).__name__}"
            ) from None
        finally:
            if self._http is None:
                await http.aclose()
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict):
            code = body.get("Code") if isinstance(body, dict) else None
            request_id = body.get("RequestId") if isinstance(body, dict) else None
            # Only code and request id: the STS message may echo the token.
            raise CredentialsError(
                f"STS AssumeRoleWithOIDC answered HTTP {response.status_code}",
                code=str(code) if code else None,
                request_id=str(request_id) if request_id else None,
                status_code=response.status_code,
            )
        return _temporary_credentials(body.get("Credentials"), "STS AssumeRoleWithOIDC")

    def __repr__(self) -> str:
        return f"RrsaCredentialsProvider(role_arn={self.role_arn!r}, sts_url={self.sts_url!r})"


# RAM role names: letters, digits, `.`, `-` (`_` tolerated), at most 64 characters
_ROLE_NAME = re.compile(r"(?!\.+$)[A-Za-z0-9._-]{1,64}")


class EcsRamRoleCredentialsProvider:
    """The ECS instance RAM role, from the metadata service (hardened mode when possible)."""

    name = "ecs_ram_role"

    def __init__(
        self,
        *,
        role_name: str | None = None,
        metadata_url: str = DEFAULT_ECS_METADATA_URL,
        imdsv1_disabled: bool = False,
        http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.role_name = role_name
        self.metadata_url = metadata_url.rstrip("/")
        self.imdsv1_disabled = imdsv1_disabled
        self._http = http_client
        self._cache = _RefreshingCache(self._fetch, clock)

    async def get_credentials(self) -> Credentials:
        return await self._cache.get()

    async def _metadata_token(self, http: httpx.AsyncClient) -> str | None:
        try:
            response = await http.put(
                f"{self.metadata_url}/latest/api/token",
                headers={"X-aliyun-ecs-metadata-token-ttl-seconds": "21600"},
                timeout=ECS_METADATA_TIMEOUT,
            )
            if response.status_code == 200:
                return response.text
            failure = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            failure = type(exc).__name__
        if self.imdsv1_disabled:
            raise CredentialsError(f"no ECS metadata token ({failure}) and IMDSv1 is disabled")
        return None

    async def _fetch(self) -> tuple[Credentials, datetime]:
        # trust_env=False: a proxy must never see metadata-service traffic.
        http = self._http or httpx.AsyncClient(trust_env=False)
        base = f"{self.metadata_url}/latest/meta-data/ram/security-credentials/"
        try:
            token = await self._metadata_token(http)
            headers = {"X-aliyun-ecs-metadata-token": token} if token else {}
            role = self.role_name
            if not role:
                listing = await http.get(base, headers=headers, timeout=ECS_METADATA_TIMEOUT)
                role = listing.text.strip() if listing.status_code == 200 else ""
                if not role:
                    raise CredentialsError("the ECS metadata service names no RAM role")
            if not _ROLE_NAME.fullmatch(role):
                # it ends a URL path: a `/`, `..` or CR/LF must not reach httpx
                raise CredentialsError(
                    f"the ECS RAM role name {role[:64]!r} (ALIBABA_CLOUD_ECS_METADATA or the "
                    "metadata service) is not a role name: letters, digits, '.', '_', '-'"
                )
            response = await http.get(base + role, headers=headers, timeout=ECS_METADATA_TIMEOUT)
        except httpx.HTTPError as exc:
            raise CredentialsError(
                f"ECS metadata service unreachable: {type(exc).__name__}"
            ) from None
        finally:
            if self._http is None:
                await http.aclose()
        try:
            body = response.json()
        except ValueError:
            body = None
        if (
            response.status_code != 200
            or not isinstance(body, dict)
            or body.get("Code") != "Success"
        ):
            raise CredentialsError(
                f"ECS metadata service gave no credentials (HTTP {response.status_code})"
            )
        return _temporary_credentials(body, "ECS metadata service")


# A credentials file holds a few profiles; anything larger is not one (`/dev/zero`).
MAX_CREDENTIALS_FILE_BYTES = 1 << 20


def _refuse_unreadable(path: Path) -> None:
    """CredentialsError for a file that is not a small regular file, InvalidCredentialsError
    naming the line of the first byte that is not UTF-8; the line itself is never shown
    (it may hold the secret)."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise CredentialsError(f"credentials file {path} is not a regular file")
            raw = fh.read(MAX_CREDENTIALS_FILE_BYTES + 1)
    except OSError:
        return  # the parser's own read says what is wrong
    if len(raw) > MAX_CREDENTIALS_FILE_BYTES:
        raise CredentialsError(
            f"credentials file {path} is larger than {MAX_CREDENTIALS_FILE_BYTES} bytes"
        )
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise InvalidCredentialsError(
            f"credentials file {path} line {line} is not UTF-8 text"
        ) from None


def _option_line(path: Path, profile: str, option: str) -> int | str:
    """The line of `option` in `[profile]` (the last one, as configparser reads it)."""
    found: int | str = "?"
    section = None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return found
    for number, text in enumerate(lines, start=1):
        stripped = text.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1].strip()
        elif section == profile and stripped.split("=", 1)[0].split(":", 1)[0].strip() == option:
            found = number
    return found


def _file_error(path: Path, exc: configparser.Error) -> str:
    """The file and the line number of a parse error, never the line: configparser quotes
    it whole, and a malformed line is as likely as any to hold a secret."""
    line = getattr(exc, "lineno", None)
    errors = getattr(exc, "errors", None)
    if line is None and errors:
        line = errors[0][0]
    where = f" at line {line}" if line is not None else ""
    return f"credentials file {path} is not valid INI{where} ({type(exc).__name__})"


class CredentialsFileProvider:
    """A profile of `~/.alibabacloud/credentials.ini` (type access_key, ecs_ram_role or
    oidc_role_arn)."""

    name = "credentials_file"

    def __init__(self, path: str | Path, profile: str = "default") -> None:
        self.path = Path(path)
        self.profile = profile
        self._delegate: CredentialsProvider | None = None

    def _load(self) -> CredentialsProvider:
        parser = configparser.ConfigParser(interpolation=None)
        _refuse_unreadable(self.path)
        try:
            with self.path.open(encoding="utf-8") as fh:
                parser.read_file(fh)
        except OSError as exc:
            raise CredentialsError(
                f"cannot read credentials file {self.path}: {exc.strerror}"
            ) from None
        except configparser.Error as exc:
            raise CredentialsError(_file_error(self.path, exc)) from None
        if not parser.has_section(self.profile):
            raise CredentialsError(f"credentials file {self.path} has no profile {self.profile!r}")
        section = parser[self.profile]
        if section.get("enable", "true").lower() == "false":
            raise CredentialsError(f"profile {self.profile!r} is disabled")
        kind = section.get("type", "access_key")
        if kind == "access_key":
            key_id = section.get("access_key_id", "")
            secret = section.get("access_key_secret", "")
            if not key_id or not secret:
                raise CredentialsError(f"profile {self.profile!r} lacks access_key_id/secret")
            return StaticCredentialsProvider(self._credentials(key_id, secret))
        if kind == "ecs_ram_role":
            return EcsRamRoleCredentialsProvider(role_name=section.get("role_name") or None)
        if kind == "oidc_role_arn":
            return RrsaCredentialsProvider(
                role_arn=section.get("role_arn", ""),
                oidc_provider_arn=section.get("oidc_provider_arn", ""),
                oidc_token_file=section.get("oidc_token_file_path", ""),
                role_session_name=section.get("role_session_name") or None,
                sts_url=f"https://{section.get('sts_endpoint', DEFAULT_STS_ENDPOINT)}",
            )
        raise CredentialsError(f"credentials file type {kind!r} is not supported")

    def _credentials(self, key_id: str, secret: str) -> Credentials:
        try:
            return Credentials(key_id, secret)
        except InvalidCredentialsError as exc:
            option = exc.field or "access_key_id"
            line = _option_line(self.path, self.profile, option)
            raise InvalidCredentialsError(
                f"credentials file {self.path} line {line}: {option} of profile "
                f"{self.profile!r} {exc.problem}",
                field=exc.field,
                problem=exc.problem,
            ) from None

    async def get_credentials(self) -> Credentials:
        if self._delegate is None:
            self._delegate = await asyncio.to_thread(self._load)
        return await self._delegate.get_credentials()


class ProviderChain:
    """Tries providers in order; the first that answers is remembered and used from then on."""

    name = "default"

    def __init__(self, providers: Sequence[CredentialsProvider]) -> None:
        self.providers = list(providers)
        self._chosen: CredentialsProvider | None = None
        self._lock = asyncio.Lock()

    async def get_credentials(self) -> Credentials:
        if self._chosen is not None:
            return await self._chosen.get_credentials()
        async with self._lock:
            if self._chosen is not None:
                return await self._chosen.get_credentials()
            failures = []
            for provider in self.providers:
                try:
                    creds = await provider.get_credentials()
                except InvalidCredentialsError:
                    # set, but unusable: a person's mistake to show, not a reason to fall
                    # through to the next source (another identity, perhaps another account)
                    raise
                except CredentialsError as exc:
                    failures.append(
                        f"{getattr(provider, 'name', type(provider).__name__)}: {exc.message}"
                    )
                    continue
                self._chosen = provider
                log.debug("using credentials from %s", getattr(provider, "name", provider))
                return creds
        raise CredentialsError("no usable credentials; tried " + "; ".join(failures))


def default_provider_chain(
    environ: Mapping[str, str] | None = None,
    *,
    http_client: httpx.AsyncClient | None = None,
    ecs_metadata_url: str = DEFAULT_ECS_METADATA_URL,
) -> ProviderChain:
    """Environment, RRSA, credentials file, ECS RAM role, in the SDK's order."""
    env = os.environ if environ is None else environ
    providers: list[CredentialsProvider] = [EnvironmentCredentialsProvider(env)]
    rrsa = RrsaCredentialsProvider.from_environment(env, http_client)
    if rrsa is not None:
        providers.append(rrsa)
    credentials_file = env.get("ALIBABA_CLOUD_CREDENTIALS_FILE") or str(
        Path.home() / ".alibabacloud" / "credentials.ini"
    )
    if env.get("ALIBABA_CLOUD_CREDENTIALS_FILE") or Path(credentials_file).is_file():
        providers.append(
            CredentialsFileProvider(credentials_file, env.get("ALIBABA_CLOUD_PROFILE") or "default")
        )
    if env.get("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "").lower() != "true":
        providers.append(
            EcsRamRoleCredentialsProvider(
                role_name=env.get("ALIBABA_CLOUD_ECS_METADATA") or None,
                metadata_url=ecs_metadata_url,
                imdsv1_disabled=env.get("ALIBABA_CLOUD_IMDSV1_DISABLED", "").lower() == "true",
                http_client=http_client,
            )
        )
    return ProviderChain(providers)
