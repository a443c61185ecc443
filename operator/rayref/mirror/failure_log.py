"""A failed job's driver-log tail -> the excerpt in `status.failureLog.excerpt` and the
JobFailed Event (what `kubectl describe` shows). Pure: text in, text out.

The choices:
- The last exception first. The anchor is the LAST line `Traceback (most recent call
  last):` or Ray's wrapped exception line (`ray.exceptions.RayTaskError(ValueError): ...`:
  a class ending in `Error`, the cause's class in parentheses, a colon; a call such as
  `main(args)` is no anchor) among the window's lines (below); in a chained traceback
  ("During handling of the above exception...") that is the last one, whose exception is
  the one that ended the job.
  Its exception line is the first non-indented line after the anchor that reads
  `Name: message`, `module.Name: message` or a bare `Name` (other non-indented lines, a
  log record interleaved by another thread, are skipped). After Ray's wrapped line come
  the task's remote frames, indented, and then the cause's own line (`ValueError: boom`):
  that one is taken, since it holds the message (the wrapped line's is `ray::f() (pid=..)`)
  and its class is the one the wrapped line names. A Ray worker's line prefix
  (`(f pid=123) `) is looked through. The exception line heads the excerpt (one line,
  cut like any other; a message's later lines are in the tail), then `---`, then the
  log's last lines. An anchor without an exception line after it (a log cut mid-traceback)
  gives no header rather than an older exception. An exception group's traceback (all of
  it indented) gives none either: its tail is shown.
- The tail: as many of the log's last lines as fit both limits, ending at the log's end
  (whatever follows the traceback included). A traceback longer than that shows its last,
  innermost frames. No traceback: only the tail, no `---`. Trailing empty lines dropped,
  and empty lines at the tail's start (they would only take a line); inner ones kept.
- Plain text: escape sequences removed whole (CSI colours and cursor moves, OSC titles
  and links, DCS/APC strings, 8-bit CSI), then every other C0/C1 control character
  (tab -> one space) and the bidirectional overrides that could make a line read
  otherwise than it is stored. Trailing spaces dropped; indentation kept.
- Redaction: `rayref.emr.redaction.redact_text` (the rule every boundary uses), on each
  whole line before it is cut, so a cut never leaves half a secret unmasked; once on the
  raw line and once after the escapes are removed, so a secret is masked whether an
  escape sequence hides its key or splits it from its value. The body lines of a PEM
  block (a private key printed by a failing job) are masked first, also when the window
  starts or ends inside the block (`redact_lines`' rule).
- Limits: at most EXCERPT_MAX_LINES lines (header included) and EXCERPT_MAX_BYTES UTF-8
  bytes, newlines included; a line longer than LINE_MAX_CHARS is cut to that many
  characters, its last one `…` (a character, so never half of a multi-byte one). Lone
  surrogates (undecodable bytes) become `?` so that the result always encodes.
- Work from the end: only the last WINDOW_LINES lines within the last WINDOW_CHARS
  characters are looked at (the operator reads a 64 KiB tail anyway), so a 16 MiB text
  costs what its end costs. A first line cut by the window is dropped, the rule the
  caller already applies to its tail: its start could be the middle of a secret, which
  the redaction rule could no longer recognise. Only the lines shown are redacted.
"""

from __future__ import annotations

import re

from rayref.emr.redaction import MASK, pem_body_lines, redact_text

EXCERPT_MAX_LINES = 20
EXCERPT_MAX_BYTES = 2048  # UTF-8 bytes of the whole excerpt, newlines included
LINE_MAX_CHARS = 240  # a longer line is cut, ending with "…"
CUT_MARK = "…"
HEADER_SEPARATOR = "---"
# Enough for any traceback worth a header; the tail needs at most 20 of them.
WINDOW_LINES = 256
WINDOW_CHARS = 64 * 1024

TRACEBACK = "Traceback (most recent call last):"

_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, erases
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window titles, hyperlinks, to BEL or ST
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC strings, to ST
    r"|\x1b[ -/]*[0-~]"  # the other escape sequences (character sets, keypad modes)
    r"|\x9b[0-?]*[ -/]*[@-~]"  # the 8-bit CSI
    r"|[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]"
)
# Ray prefixes a worker's forwarded lines with the task or actor and its process.
_RAY_PREFIX = re.compile(r"\((?:[^()]*\s)?pid=\d+[^()]*\) ?")
_NAME = r"[^\W\d]\w*(?:\.[^\W\d]\w*)*"
# Ray's dual exception: the wrapping class (`RayTaskError`), the cause's in parentheses.
_WRAPPED_FORM = rf"(?:[^\W\d]\w*\.)*[^\W\d]\w*Error\({_NAME}\):(?: .*)?"
_WRAPPED = re.compile(_WRAPPED_FORM)
_EXCEPTION = re.compile(rf"{_NAME}(?::(?: .*)?)?|{_WRAPPED_FORM}")


def excerpt(text: str) -> str:
    """The excerpt of a failed job's driver-log tail ("" when it holds no text)."""
    raw = _window(text)
    plain = [_plain(line) for line in raw]
    for index in pem_body_lines(plain):  # a key's lines, which no one line shows as secret
        raw[index] = plain[index] = MASK
    while plain and not plain[-1]:
        plain.pop()
    del raw[len(plain) :]
    found = _exception_index(plain)
    header: list[str] = []
    if found is not None:
        header = [_cut(_body(_redacted(raw[found]))), HEADER_SEPARATOR]
    return "\n".join(_fit(header, raw))


def _window(text: str) -> list[str]:
    """The last lines of `text` (WINDOW_LINES, within WINDOW_CHARS), whole lines only."""
    # one character more than the window: a newline there means the next line is whole
    low = max(0, len(text) - WINDOW_CHARS - 1)
    start = len(text)
    for _ in range(WINDOW_LINES):
        newline = text.rfind("\n", low, start)
        if newline < 0:
            if low == 0:
                start = 0
            elif start == len(text):
                return []  # one line longer than the window: no whole line to show
            else:
                start += 1
            return _safe(text[start:]).split("\n")
        start = newline
    return _safe(text[start + 1 :]).split("\n")


def _safe(text: str) -> str:
    return text.encode("utf-8", "replace").decode("utf-8")


def _plain(line: str) -> str:
    return _ESCAPES.sub("", line).replace("\t", " ").rstrip()


def _redacted(line: str) -> str:
    return redact_text(_plain(redact_text(line)))


def _body(line: str) -> str:
    prefix = _RAY_PREFIX.match(line)
    return line[prefix.end() :] if prefix else line


def _cut(line: str) -> str:
    if len(line) <= LINE_MAX_CHARS:
        return line
    return line[: LINE_MAX_CHARS - len(CUT_MARK)] + CUT_MARK


def _exception_index(plain: list[str]) -> int | None:
    """The index of the last traceback's exception line, if the window has one."""
    bodies = [_body(line) for line in plain]
    for index in range(len(bodies) - 1, -1, -1):
        body = bodies[index]
        if body == TRACEBACK:
            return _exception_after(bodies, index + 1)
        if _WRAPPED.fullmatch(body):
            return _exception_after(bodies, index)
    return None


def _exception_after(bodies: list[str], first: int) -> int | None:
    found: int | None = None
    frames = False  # indented lines seen since `found`: a wrapped exception's remote frames
    for index in range(first, len(bodies)):
        body = bodies[index]
        if not body or body[0] == " ":
            frames = frames or bool(body)
            continue
        is_exception = _EXCEPTION.fullmatch(body) is not None
        if found is not None and not (frames and is_exception):
            return found
        if is_exception:
            found, frames = index, False
            if not _WRAPPED.fullmatch(body):
                return found
    return found


def _fit(header: list[str], raw: list[str]) -> list[str]:
    """The header, then as many of the last lines as fit both limits."""
    used = len("\n".join(header).encode())
    tail: list[str] = []
    for line in reversed(raw):
        if len(header) + len(tail) >= EXCERPT_MAX_LINES:
            break
        shown = _cut(_redacted(line))
        cost = len(shown.encode()) + (1 if header or tail else 0)
        if used + cost > EXCERPT_MAX_BYTES:
            break
        tail.append(shown)
        used += cost
    while tail and not tail[-1]:
        tail.pop()  # empty lines at the tail's start
    return header + tail[::-1] if tail else header[:1]
