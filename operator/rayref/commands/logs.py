"""`rayref logs job WORKSPACE_ID SUBMISSION_ID`: a job's driver log (or another file).

The same credential chain, region, network and endpoint as `rayref get`; the files are
found by ListRayLogs under the job's own log location (GetRayJob's logBucketName and
logPath) and read through GetRayLog's pre-signed URL, whose host must be OSS of the
region or on the allow-list (--log-host, $RAYREF_LOG_HOSTS). The URL is a credential:
it is never printed, not even in an error. Every printed line goes through the one
redaction rule of docs/reliability.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rayref.commands.options import (
    DEFAULT_REGION,
    MAX_SHOWN,
    cli_hint,
    failure,
    id_problem,
    place,
    shown,
)
from rayref.emr.redaction import LogLineRedactor

if TYPE_CHECKING:
    from rayref.emr.client import EmrClient
    from rayref.emr.credentials import CredentialsProvider
    from rayref.emr.errors import EmrError
    from rayref.emr.log_download import LogReader
    from rayref.emr.log_models import RayLogObject
    from rayref.emr.models import RayJob

DEFAULT_TAIL_LINES = 100
DEFAULT_FOLLOW_SECONDS = 5.0
# Bytes read per wanted line for a tail: log lines are rarely longer, and what is read
# stays bounded whatever --tail says (LogReader's own cap is 16 MiB).
BYTES_PER_LINE = 1024
MIN_TAIL_BYTES = 64 * 1024
MAX_TAIL_BYTES = 16 * 1024 * 1024
# --follow's reads of one round when the file grows between its listing and its read.
READ_ATTEMPTS = 3

EPILOG = f"""\
what is printed: the last --tail lines (default {DEFAULT_TAIL_LINES}) of the job's driver log,
  <submissionId>_driver.log (the newest attempt's), or of --file NAME; --list prints the
  files instead (size in bytes, modified time in UTC, path under the job's log location).
  --follow: while the job runs, the new lines every --interval seconds (default
  {DEFAULT_FOLLOW_SECONDS:g}); it stops once the job has ended and its last lines are printed.
log hosts: a file is downloaded only from OSS of --region (https) or from a host on the
  allow-list: --log-host HOST[:PORT] (repeatable, *.domain for subdomains) and
  $RAYREF_LOG_HOSTS (comma-separated); `rayref simulate`'s store needs 127.0.0.1:<port>.
never printed: the download URL (its query string is a credential), not even in an error;
  secrets in the log's lines are masked as by `rayref get` (docs/reliability.md).
credentials, region, network, endpoint: as `rayref get` (see rayref get --help).
rayjobref/NAME [-n NS]: the ref's workspace, submission id, region and credentials Secret,
  read through your kubeconfig (a Secret you may not read: the default chain, with a note).
exit status: 0 printed, 1 the read failed (one line on stderr), 2 usage, 130 Ctrl-C.
"""


class LogsFailure(Exception):
    """A run-time failure that is no API error: one line, exit 1."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:MAX_SHOWN]!r} is not a number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not 1 or more")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:MAX_SHOWN]!r} is not a number") from None
    if not 0.1 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{value:g} is not from 0.1 to 3600 seconds")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "kind", metavar="job|rayjobref/NAME", help="job (with its ids), or a RayJobRef to read"
    )
    parser.add_argument(
        "workspace_id", nargs="?", metavar="WORKSPACE_ID", help="workspace id, w-... (job)"
    )
    parser.add_argument(
        "submission_id", nargs="?", metavar="SUBMISSION_ID", help="submission id (job)"
    )
    parser.add_argument(
        "-n",
        "--namespace",
        default=None,
        help="the RayJobRef's namespace (default: the kubeconfig context's)",
    )
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--list", action="store_true", help="list the job's log files")
    what.add_argument(
        "--file", metavar="NAME", default=None, help="print this file (a name from --list)"
    )
    parser.add_argument(
        "--tail",
        type=_positive_int,
        default=DEFAULT_TAIL_LINES,
        metavar="N",
        help=f"print the last N lines (default {DEFAULT_TAIL_LINES})",
    )
    parser.add_argument("--follow", action="store_true", help="print new lines while the job runs")
    parser.add_argument(
        "--interval",
        type=_positive_float,
        default=DEFAULT_FOLLOW_SECONDS,
        metavar="SECONDS",
        help=f"--follow's re-read period (default {DEFAULT_FOLLOW_SECONDS:g})",
    )
    parser.add_argument(
        "--log-host",
        action="append",
        default=[],
        metavar="HOST",
        help="also download from HOST[:PORT] (repeatable; with $RAYREF_LOG_HOSTS)",
    )
    parser.add_argument(
        "--region",
        default=None,
        help=f"region id (default: the ref's, $RAYREF_DEFAULT_REGION or {DEFAULT_REGION})",
    )
    parser.add_argument("--endpoint", default=None, metavar="URL", help="as rayref get's")
    parser.add_argument(
        "--network", choices=["public", "vpc"], default=None, help="as rayref get's"
    )


@dataclass(frozen=True)
class Target:
    workspace_id: str
    submission_id: str
    region: str
    network: str
    endpoint: str
    # None: the default chain
    credentials: CredentialsProvider | None = None


def _usage(message: str) -> int:
    print(f"rayref logs: error: {message}", file=sys.stderr)
    return 2


def _check_settings(args: argparse.Namespace) -> Target | str:
    """The target, or why the command line is unusable (one line)."""
    where = place(args.region, args.network, args.endpoint)
    if isinstance(where, str):
        return where
    ids = [("workspace id", args.workspace_id), ("submission id", args.submission_id)]
    problem = id_problem(ids)
    if problem is not None:
        return problem
    return Target(
        args.workspace_id, args.submission_id, where.region, where.network, where.endpoint
    )


def _allowed_hosts(flags: list[str]) -> list[str]:
    from_env = os.environ.get("RAYREF_LOG_HOSTS", "")
    return [*flags, *(part for part in from_env.split(",") if part.strip())]


def _log_hosts_problem(flags: list[str]) -> str | None:
    """Why an allow-list entry is unusable, naming where it came from; None if none is.

    The operator's rule (`check_allowed_entry`): an entry the download rule can never
    match would otherwise be ignored, and the download refused later with no word of it.
    """
    from rayref.emr.log_hosts import check_allowed_entry

    from_env = os.environ.get("RAYREF_LOG_HOSTS", "").split(",")
    given = [(entry, "--log-host ", "") for entry in flags]
    given += [(entry, "log host ", " (from $RAYREF_LOG_HOSTS)") for entry in from_env]
    for entry, flag, where in given:
        problem = check_allowed_entry(entry) if entry.strip() else None
        if problem is not None:
            return f"{flag}{problem}{where}"
    return None


def _hint(exc: EmrError, endpoint: str) -> str:
    from rayref.emr.errors import LogHostNotAllowedError

    if isinstance(exc, LogHostNotAllowedError):
        return "if it is your object storage, allow it with --log-host or $RAYREF_LOG_HOSTS"
    return cli_hint(exc, "job", endpoint)


def _failure(exc: EmrError, endpoint: str) -> str:
    return f"rayref logs: {failure(exc, _hint(exc, endpoint))}"


def _relative(obj: RayLogObject, prefix: str) -> str:
    path = (obj.path or obj.name or "").lstrip("/")
    return path[len(prefix) :] if prefix and path.startswith(prefix) else path


def _redacted_lines(logs: JobLogs, data: bytes, *, partial: bool) -> list[str]:
    """Whole lines of `data`, redacted; a first line cut by the tail's start is dropped."""
    lines = data.decode("utf-8", errors="replace").splitlines()
    if partial and lines:
        lines = lines[1:]
    return logs.redactor.redact(lines)


class JobLogs:
    """One job's log location, files and reads, over one client and one reader."""

    def __init__(self, client: EmrClient, reader: LogReader, target: Target) -> None:
        self.client = client
        self.reader = reader
        self.target = target
        self.bucket = ""
        self.prefix = ""
        # one per file followed: a key printed across two polls is masked in both
        self.redactor = LogLineRedactor()

    async def job(self) -> RayJob:
        job = await self.client.get_ray_job(self.target.workspace_id, self.target.submission_id)
        self.bucket = job.log_bucket_name or ""
        self.prefix = (job.log_path or "").lstrip("/")
        if not self.bucket or not self.prefix:
            raise LogsFailure(
                f"job {self.target.submission_id} has no log location yet "
                f"(status {job.status or 'unknown'}); try again once it runs"
            )
        return job

    async def files(self) -> list[RayLogObject]:
        found = self.client.iter_ray_logs(
            self.target.workspace_id,
            self.target.submission_id,
            bucket_name=self.bucket,
            prefix=self.prefix,
        )
        return [obj async for obj in found if not obj.is_dir and obj.path]

    def pick(self, files: list[RayLogObject], name: str | None, status: object) -> str:
        """The path of --file NAME, or of the driver log."""
        from rayref.emr.log_models import driver_log_path

        if name is None:
            path = driver_log_path(files, self.target.submission_id)
            if path is None:
                raise LogsFailure(
                    f"job {self.target.submission_id} has no driver log yet "
                    f"(status {status or 'unknown'}); see --list"
                )
            return path
        wanted = name.lstrip("/")
        matches = [
            obj
            for obj in files
            if wanted in (_relative(obj, self.prefix), (obj.path or "").lstrip("/"))
            or _relative(obj, self.prefix).rsplit("/", 1)[-1] == wanted
        ]
        if not matches:
            raise LogsFailure(
                f"job {self.target.submission_id} has no log file {shown(name)}; see --list"
            )
        newest = max(
            matches,
            key=lambda o: (o.time_modified.timestamp() if o.time_modified else 0.0, o.path),
        )
        return newest.path or ""

    async def tail(self, path: str, tail_bytes: int) -> tuple[bytes, int | None, bool]:
        url = await self.client.get_ray_log(
            self.target.workspace_id, self.target.submission_id, bucket_name=self.bucket, path=path
        )
        read = await self.reader.tail(url, tail_bytes)
        return read.data, read.total_size, read.partial


def _listing(files: list[RayLogObject], prefix: str) -> list[str]:
    from rayref.emr.redaction import redact_text

    rows = []
    for obj in sorted(files, key=lambda o: o.path or ""):
        modified = obj.time_modified.strftime("%Y-%m-%dT%H:%M:%SZ") if obj.time_modified else "-"
        rows.append(
            f"{obj.size if obj.size is not None else '-':>10}  {modified}  "
            f"{redact_text(_relative(obj, prefix))}"
        )
    return rows


def _tail_bytes(lines: int) -> int:
    return min(max(lines * BYTES_PER_LINE, MIN_TAIL_BYTES), MAX_TAIL_BYTES)


def _emit(lines: list[str]) -> None:
    for line in lines:
        print(line)
    sys.stdout.flush()


async def _print_tail(logs: JobLogs, path: str, lines: int) -> int:
    """Print the last `lines` lines; the byte offset just past the last whole line."""
    data, total, partial = await logs.tail(path, _tail_bytes(lines))
    complete = data[: data.rfind(b"\n") + 1]
    _emit(_redacted_lines(logs, complete, partial=partial)[-lines:])
    size = total if total is not None else len(data)
    return size - (len(data) - len(complete))


async def _follow(logs: JobLogs, args: argparse.Namespace, path: str, offset: int) -> None:
    """New whole lines from `offset` on, while the job runs; the rest once it has ended."""
    import asyncio

    from rayref.emr.models import TERMINAL_JOB_STATUSES

    ended = False
    while not ended:
        await asyncio.sleep(args.interval)
        job = await logs.job()
        ended = job.status in TERMINAL_JOB_STATUSES
        files = await logs.files()
        if args.file is None:
            # a new attempt writes a new driver log: follow that one from its start
            newest = logs.pick(files, None, job.status)
            if newest != path:
                path, offset = newest, 0
                logs.redactor = LogLineRedactor()
        size = next((obj.size for obj in files if obj.path == path), None)
        if size is not None and size > offset:
            offset = await _print_new(logs, path, offset, size)


async def _print_new(logs: JobLogs, path: str, offset: int, listed_size: int) -> int:
    """Whole lines from byte `offset` on; the offset past the last one printed.

    The listing's size says how much to ask for; the answer's own size says where the
    bytes read lie: the file may have grown in between, then the read is made again
    from the new size (a few times), so no line between the two is lost."""
    wanted = listed_size - offset
    for _ in range(READ_ATTEMPTS):
        data, total, _ = await logs.tail(path, min(wanted, MAX_TAIL_BYTES))
        complete, next_offset, gap = new_whole_lines(data, total, offset)
        if not gap or wanted >= MAX_TAIL_BYTES or total is None:
            break
        wanted = total - offset
    _emit(_redacted_lines(logs, complete, partial=gap))
    return next_offset


def new_whole_lines(data: bytes, total: int | None, offset: int) -> tuple[bytes, int, bool]:
    """Of the last bytes `data` of a file of `total` bytes: the whole lines from `offset`
    on, the offset past them, and whether bytes between `offset` and `data` were missed
    (then the first line is cut)."""
    total = total if total is not None else offset + len(data)
    start = total - len(data)
    new = data[offset - start :] if start <= offset else data
    complete = new[: new.rfind(b"\n") + 1]
    return complete, max(start, offset) + len(complete), start > offset


async def _run(args: argparse.Namespace, target: Target) -> None:
    from rayref.emr.client import EmrClient
    from rayref.emr.credentials import default_provider_chain
    from rayref.emr.log_download import LogReader
    from rayref.emr.log_hosts import LogHosts

    hosts = LogHosts.of(target.region, _allowed_hosts(args.log_host))
    async with (
        EmrClient(
            target.credentials or default_provider_chain(),
            region=target.region,
            endpoint=target.endpoint or None,
            network=target.network,
        ) as client,
        LogReader(hosts) as reader,
    ):
        logs = JobLogs(client, reader, target)
        job = await logs.job()
        files = await logs.files()
        if args.list:
            _emit(_listing(files, logs.prefix))
            return
        path = logs.pick(files, args.file, job.status)
        offset = await _print_tail(logs, path, args.tail)
        if args.follow:
            await _follow(logs, args, path, offset)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from rayref.commands.logs_ref import RefFailure, read_ref, ref_name
    from rayref.emr.errors import EmrError, InvalidCredentialsError

    name = ref_name(args.kind)
    problem = _target_problem(args, name) or _log_hosts_problem(args.log_host)
    if problem is not None:
        return _usage(problem)
    endpoint = ""
    try:
        credentials = None
        if name is not None:
            ref = read_ref(name, args.namespace)
            args.workspace_id, args.submission_id = ref.workspace_id, ref.submission_id
            args.region = args.region or ref.region
            credentials = ref.credentials
        target = _check_settings(args)
        if isinstance(target, str):
            return _usage(target)
        endpoint = target.endpoint
        asyncio.run(_run(args, replace(target, credentials=credentials)))
    except EmrError as exc:
        print(_failure(exc, endpoint), file=sys.stderr)
        return 2 if isinstance(exc, InvalidCredentialsError) else 1
    except (LogsFailure, RefFailure) as exc:
        print(f"rayref logs: {exc}", file=sys.stderr)
        return 1
    return 0


def _target_problem(args: argparse.Namespace, ref: str | None) -> str | None:
    if ref is None and args.kind != "job":
        return f"{shown(args.kind)} is neither job nor rayjobref/NAME"
    if ref is None and (args.workspace_id is None or args.submission_id is None):
        return "job needs WORKSPACE_ID and SUBMISSION_ID"
    if args.list and args.follow:
        return "--list and --follow do not go together"
    if ref is not None and (args.workspace_id is not None or not ref):
        return "rayjobref/NAME takes a name and no ids (the ref's spec gives them)"
    return None
