"""The one failure table: what the operator decides about each kind of failed read.

Every `Synced=False` reason of a ref, and every error class that leads to one, is a row
here, with each decision taken about it: whether the ref is Stalled (permanent) or keeps
its last state and is read again soon (transient), whether a list sweep that fails with
it is refused (the group's refs go to their own reads and the group is not listed again
for 2 minutes), whether a person fixes it by editing the credentials Secret, and how the
condition's message is worded. `mirror.failure`, `polling.sweeps`, `polling.reconcile`,
`polling.timing` and `discovery.status` take their answers from here; docs/status.md and
docs/install.md list the same reasons (a unit test compares them).

Adding a reason or an error class is adding a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from rayref.emr import endpoints, errors

# Sync failure reasons (the Synced condition's reason when it is False).
REMOTE_NOT_FOUND = "RemoteNotFound"
ACCESS_DENIED = "AccessDenied"
CREDENTIALS_NOT_FOUND = "CredentialsNotFound"
# Credentials that are there but no request can carry (non-ASCII, control characters).
INVALID_CREDENTIALS = "InvalidCredentials"
THROTTLED = "Throttled"
REMOTE_ERROR = "RemoteError"
INVALID_RESPONSE = "InvalidResponse"
INVALID_IDENTIFIER = "InvalidIdentifier"
# A stored spec the API models refuse (the CRD should have): nothing is read until it changes.
INVALID_SPEC = "InvalidSpec"
# The operator failed on this ref in a way it did not foresee (a bug, or a value no rule
# covers): contained to the ref, retried after a while; the message names the error.
INTERNAL_ERROR = "InternalError"


class Wording(StrEnum):
    """How `mirror.failure.failure_message` words a row's error."""

    # "<error>. Check <row hint>." (the error names the field and the value's problem)
    IDENTIFIER = "identifier"
    # The operator's own message for this ref (which Secret, which namespace rule).
    OWN = "own"
    # "<message>. Check: <class hint>." (which Secret key; never its value)
    NAMED = "named"
    # "<code> (HTTP n). Check: <class hint>.": a signature mismatch quotes the server's
    # string to sign (date and nonce), which would change the status on every poll.
    CODE_ONLY = "code-only"
    # "<code> (HTTP n): <server message>. Check: <class hint>."
    SERVER = "server"
    # "<Type>: reading the remote object failed." (nothing of a foreign error's text)
    TYPE_ONLY = "type-only"
    # The reason is set by the operator with its own message; no error class leads here.
    GIVEN = "given"


@dataclass(frozen=True)
class FailureRow:
    # None: a reason the operator sets directly (no error of a read leads to it).
    error: type[BaseException] | None
    reason: str
    # Stalled=True and a slow retry until a person acts; otherwise the last state is kept
    # and the ref is read again at its interval (or the throttling hint).
    permanent: bool
    # A list sweep failing with it hands its refs to their own reads (which report it per
    # ref) and the group is not listed again for REFUSED_SWEEP_SECONDS.
    refuses_sweep: bool
    # Fixed by editing the ref's credentials Secret: re-read every interval, while the
    # same refused key goes to the cloud only at the failure's slow pace.
    fixed_by_secret: bool
    wording: Wording
    # What to check, when the error class carries no hint of its own (`EmrError.hint`).
    hint: str | None = None
    # Subclasses outside rayref.emr (which the mirror may not import) this row stands for.
    covers: tuple[str, ...] = ()


# Most specific class first: no row's class is a subclass of a later row's class, so the
# order reads as the old isinstance chain, and `row_for` (which walks the error's MRO)
# answers the same.
FAILURES: tuple[FailureRow, ...] = (
    FailureRow(
        endpoints.InvalidIdentifierError,
        INVALID_IDENTIFIER,
        permanent=True,
        refuses_sweep=True,
        fixed_by_secret=False,
        wording=Wording.IDENTIFIER,
        hint="spec.regionId or the operator's RAYREF_DEFAULT_REGION",
        covers=("rayref.emr.endpoints.InvalidEndpointError",),
    ),
    FailureRow(
        errors.InvalidCredentialsError,
        INVALID_CREDENTIALS,
        permanent=True,
        refuses_sweep=True,
        fixed_by_secret=True,
        wording=Wording.NAMED,
    ),
    FailureRow(
        errors.CredentialsError,
        CREDENTIALS_NOT_FOUND,
        permanent=True,
        refuses_sweep=True,
        fixed_by_secret=True,
        wording=Wording.OWN,
        covers=("rayref.kube.credentials.CredentialsNotFound",),
    ),
    FailureRow(
        errors.NotFoundError,
        REMOTE_NOT_FOUND,
        permanent=True,
        refuses_sweep=True,
        fixed_by_secret=False,
        wording=Wording.SERVER,
    ),
    FailureRow(
        errors.AccessDeniedError,
        ACCESS_DENIED,
        permanent=True,
        refuses_sweep=True,
        fixed_by_secret=True,
        wording=Wording.SERVER,
    ),
    FailureRow(
        errors.AuthenticationError,
        ACCESS_DENIED,
        permanent=True,
        refuses_sweep=True,
        fixed_by_secret=True,
        wording=Wording.CODE_ONLY,
    ),
    # A wrong request (endpoint, parameter) repeats for every sweep, but a ref's own read
    # may still work: transient on the ref, refused as a sweep.
    FailureRow(
        errors.BadRequestError,
        REMOTE_ERROR,
        permanent=False,
        refuses_sweep=True,
        fixed_by_secret=False,
        wording=Wording.SERVER,
    ),
    FailureRow(
        errors.ThrottledError,
        THROTTLED,
        permanent=False,
        refuses_sweep=False,
        fixed_by_secret=False,
        wording=Wording.SERVER,
    ),
    FailureRow(
        errors.InvalidResponseError,
        INVALID_RESPONSE,
        permanent=False,
        refuses_sweep=False,
        fixed_by_secret=False,
        wording=Wording.SERVER,
    ),
    FailureRow(
        errors.ServerError,
        REMOTE_ERROR,
        permanent=False,
        refuses_sweep=False,
        fixed_by_secret=False,
        wording=Wording.SERVER,
    ),
    FailureRow(
        errors.EmrConnectionError,
        REMOTE_ERROR,
        permanent=False,
        refuses_sweep=False,
        fixed_by_secret=False,
        wording=Wording.SERVER,
    ),
    # The log operations (rayref.emr.client.EmrClient.list_ray_logs / get_ray_log, and
    # rayref.emr.log_download) read no ref's state: a status that shows one keeps it
    # transient, since a new URL or the next attempt may work.
    FailureRow(
        errors.LogApiError,
        REMOTE_ERROR,
        permanent=False,
        refuses_sweep=False,
        fixed_by_secret=False,
        wording=Wording.SERVER,
    ),
    FailureRow(
        errors.LogDownloadError,
        REMOTE_ERROR,
        permanent=False,
        refuses_sweep=False,
        fixed_by_secret=False,
        wording=Wording.SERVER,
        covers=(
            "rayref.emr.errors.LogHostNotAllowedError",
            "rayref.emr.errors.LogUrlRefusedError",
        ),
    ),
    FailureRow(
        errors.EmrError,
        REMOTE_ERROR,
        permanent=False,
        refuses_sweep=False,
        fixed_by_secret=False,
        wording=Wording.SERVER,
    ),
    # Anything else a read raised.
    FailureRow(
        BaseException,
        REMOTE_ERROR,
        permanent=False,
        refuses_sweep=False,
        fixed_by_secret=False,
        wording=Wording.TYPE_ONLY,
    ),
    FailureRow(
        None,
        INVALID_SPEC,
        permanent=True,
        refuses_sweep=False,
        fixed_by_secret=False,
        wording=Wording.GIVEN,
    ),
    FailureRow(
        None,
        INTERNAL_ERROR,
        permanent=False,
        refuses_sweep=False,
        fixed_by_secret=False,
        wording=Wording.GIVEN,
    ),
)

_BY_CLASS: dict[type[BaseException], FailureRow] = {
    row.error: row for row in FAILURES if row.error is not None
}


def row_for(error: BaseException) -> FailureRow:
    """The row of an error: its own class's, else its nearest ancestor's."""
    for cls in type(error).__mro__:
        row = _BY_CLASS.get(cls)
        if row is not None:
            return row
    raise AssertionError("the table has a BaseException row")  # pragma: no cover


# The decisions as sets and tuples, for callers that test a reason or an error's class.
REASONS: tuple[str, ...] = tuple(dict.fromkeys(row.reason for row in FAILURES))
PERMANENT_FAILURES = frozenset(row.reason for row in FAILURES if row.permanent)
SWEEP_REFUSALS: tuple[type[BaseException], ...] = tuple(
    row.error for row in FAILURES if row.error is not None and row.refuses_sweep
)
SECRET_FIXES: tuple[type[BaseException], ...] = tuple(
    row.error for row in FAILURES if row.error is not None and row.fixed_by_secret
)
