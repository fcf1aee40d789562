# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""Lines matching named patterns in the last N hours of log files, rotated files included. Records out.

Read-only and streaming: each file is read in blocks of about 1 MiB (gzip, bzip2 and xz decompressed as
they are read), only the newest few matching lines per pattern are kept, and timestamps are parsed only
on lines a pattern matched. A pattern with a literal every match must contain (``Failed password``) is
looked for with ``str.find`` over the whole block; the regular expression then runs only on those lines.
"""

from __future__ import annotations

import bz2
import codecs
import datetime
import glob
import gzip
import lzma
import math
import os
import re
import time
import zlib
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable

try:  # the regular-expression parser, to find the literals a pattern needs (Python 3.11 renamed it)
    from re import _constants as _sre_constants  # type: ignore[attr-defined]
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # Python 3.9 and 3.10
    import sre_constants as _sre_constants  # pylint: disable=deprecated-module
    import sre_parse as _sre_parse  # pylint: disable=deprecated-module

try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
except ImportError:  # Python < 3.9 is not supported on managed nodes (tests/config.yml); keeps the import error readable
    ZoneInfo = None  # type: ignore[assignment,misc]
    ZoneInfoNotFoundError = KeyError  # type: ignore[assignment,misc]

from .errors import MaintenanceError
from .records import make_record
from .timestamps import parse_iso8601

ACTION = "log_pattern"
BLOCK_CHARS = 1 << 20
# A line longer than this is matched on its first MAX_LINE_CHARS characters (memory stays bounded on a log
# that never writes a newline).
MAX_LINE_CHARS = 1 << 20
# Lines searched at the start of a file for its first timestamp (to skip older rotated files).
FIRST_STAMP_BYTES = 64 * 1024
# Kept beyond line_max_chars before redaction, so a secret cut by the truncation is still recognised.
REDACT_MARGIN = 1024
REDACTED = "<redacted>"
# Compressions logrotate's compresscmd commonly uses, by suffix.
OPENERS: dict[str, Callable[[str], BinaryIO]] = {
    ".gz": lambda path: gzip.open(path, "rb"),  # type: ignore[dict-item]
    ".bz2": lambda path: bz2.open(path, "rb"),  # type: ignore[dict-item]
    ".xz": lambda path: lzma.open(path, "rb"),  # type: ignore[dict-item]
}
_COMPRESSED = r"(?:\.gz|\.bz2|\.xz)?"
PATTERN_KEYS = {"name", "regex", "max"}
# Stamps up to this far after now count (clocks differ a little); later ones make the record unknown.
FUTURE_TOLERANCE = datetime.timedelta(minutes=5)
# The longest window: ten years.
MAX_HOURS = 87600
MAX_REPORTED = {"newest_lines": 1000, "line_max_chars": 100000}
TIMESTAMP_KEYS = {"format", "regex", "timezone"}
FILE_KEYS = {"path", "rotated"}
# Built-in redaction: (regex, group whose text is replaced; 0 = the whole match). Keys keep their name,
# values go: "password=hunter2" -> "password=<redacted>", "Authorization: Bearer x" -> "Authorization: Bearer <redacted>".
BUILTIN_REDACTIONS: tuple[tuple[str, int], ...] = (
    (r"(?i)\b(?:authorization|proxy-authorization)[\"']?\s*[=:]\s*[\"']?(?:(?:bearer|basic|digest|token|negotiate)\s+)?"
     r"([^\s\"',;]+)", 1),
    (r"(?i)\bbearer\s+([A-Za-z0-9\-._~+/]+=*)", 1),
    (r"(?i)\b(?:set-)?cookie[\"']?\s*[=:]\s*([^\r\n]+)", 1),
    # Any prefix (PGPASSWORD=, dbpassword=, X_API_KEY:) and a URL-encoded "=" (password%3D...).
    (r"(?i)[A-Za-z0-9_]*(?:password|passwd|pwd|pass|passphrase|token|access_token|refresh_token|id_token|secret|"
     r"client_secret|api[_-]?key|apikey|access[_-]?key|secret[_-]?key|private[_-]?key|signature|sig|auth|"
     r"credentials?|session(?:id)?)[\"']?\s*(?:[=:]|%3[Dd])\s*(\"[^\"]*\"|'[^']*'|[^\s&,;\"'}]+)", 1),
    (r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@]+:([^/\s@]+)@", 1),  # user:password@ in a URL
    (r"\b[A-Za-z][A-Za-z0-9+.\-]*://([^/\s:@]+)@", 1),  # a token as the URL's user (https://TOKEN@host)
    (r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]+", 0),  # a JSON web token anywhere
    (r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", 0),  # an AWS access key id
)


class LogReviewError(MaintenanceError):
    """An option of the log review is malformed; ``msg`` names the value."""


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class LogPattern:
    name: str
    regex: str
    max: int
    line: re.Pattern  # run on one line
    block: re.Pattern  # the same with MULTILINE, run on a block of lines when no literal is known
    literals: tuple[str, ...] | None  # every match contains one of these


@dataclass(frozen=True)
class LogFile:
    path: str
    rotated: tuple[str, ...] | None  # globs naming its rotated files; None: discover them next to it


def _compile(regex: Any, where: str, flags: int = 0) -> re.Pattern:
    if not isinstance(regex, str) or not regex:
        raise LogReviewError(msg=f"{where}: regex {regex!r} must be a non-empty regular expression")
    try:
        return re.compile(regex, flags)
    except re.error as exc:
        raise LogReviewError(msg=f"{where}: regex {regex!r} does not compile: {exc}") from exc


def parse_patterns(raw: Any) -> list[LogPattern]:
    if not isinstance(raw, list) or not raw:
        raise LogReviewError(msg=f"patterns must be a non-empty list of {{name, regex, max}}, got {raw!r}")
    found: list[LogPattern] = []
    for position, item in enumerate(raw):
        where = f"patterns[{position}]"
        if not isinstance(item, Mapping):
            raise LogReviewError(msg=f"{where} must be a dict with name, regex and max, got {item!r}")
        unknown = sorted(set(item) - PATTERN_KEYS)
        if unknown:
            raise LogReviewError(msg=f"{where}: unknown key(s) {', '.join(unknown)}; allowed: max, name, regex")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise LogReviewError(msg=f"{where}: name {name!r} must be a non-empty string")
        where = f"{where} ({name})"
        limit = item.get("max")
        limit = 0 if limit is None else limit
        if isinstance(limit, bool) or not str(limit).strip().isdecimal():
            raise LogReviewError(msg=f"{where}: max {item.get('max')!r} must be a whole number, 0 or more")
        line = _compile(item.get("regex"), where)
        if line.search(""):
            # A typo like "SQL injection|XSS|" matches every line; refuse rather than report every line.
            raise LogReviewError(msg=f"{where}: regex {item['regex']!r} matches an empty line, so it would count "
                                     f"every line")
        found.append(LogPattern(name=name.strip(), regex=item["regex"], max=int(limit), line=line,
                                block=re.compile(item["regex"], re.MULTILINE), literals=required_literals(item["regex"])))
    names = [pattern.name for pattern in found]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise LogReviewError(msg=f"pattern names must be unique, repeated: {', '.join(repeated)}")
    return found


def parse_files(raw: Any) -> list[LogFile]:
    if not isinstance(raw, list) or not raw:
        raise LogReviewError(msg=f"files must be a non-empty list of log file paths, got {raw!r}")
    found: list[LogFile] = []
    for position, item in enumerate(raw):
        where = f"files[{position}]"
        rotated: tuple[str, ...] | None = None
        if isinstance(item, Mapping):
            unknown = sorted(set(item) - FILE_KEYS)
            if unknown:
                raise LogReviewError(msg=f"{where}: unknown key(s) {', '.join(unknown)}; allowed: path, rotated")
            if item.get("rotated") is not None:
                if not isinstance(item["rotated"], list) or not all(isinstance(g, str) and g for g in item["rotated"]):
                    raise LogReviewError(msg=f"{where}: rotated {item['rotated']!r} must be a list of paths or globs")
                rotated = tuple(item["rotated"])
            path = item.get("path")
        else:
            path = item
        if not isinstance(path, str) or not path.strip():
            raise LogReviewError(msg=f"{where}: path {path!r} must be a log file path")
        found.append(LogFile(path=path, rotated=rotated))
    paths = [log.path for log in found]
    repeated = sorted({path for path in paths if paths.count(path) > 1})
    if repeated:
        raise LogReviewError(msg=f"files must be unique, repeated: {', '.join(repeated)}")
    return found


def parse_redactions(raw: Any) -> list[tuple[re.Pattern, int]]:
    """The built-in redactions, then the extra ones (the first group's text, or the whole match, is replaced)."""
    if raw is not None and not isinstance(raw, list):
        raise LogReviewError(msg=f"redact must be a list of regular expressions, got {raw!r}")
    extra = []
    for position, regex in enumerate(raw or []):
        compiled = _compile(regex, f"redact[{position}]")
        extra.append((compiled, 1 if compiled.groups else 0))
    return [(re.compile(regex), group) for regex, group in BUILTIN_REDACTIONS] + extra


def parse_now(value: Any) -> datetime.datetime:
    if value in (None, ""):
        return datetime.datetime.now(datetime.timezone.utc)
    stamp = parse_iso8601(str(value).strip())
    if stamp is None or stamp.tzinfo is None:
        raise LogReviewError(msg=f"now {value!r} must be an ISO 8601 datetime with an offset or Z, "
                                 f"for example 2026-12-06T10:46:36Z")
    return stamp.astimezone(datetime.timezone.utc)


def parse_positive(params: Mapping[str, Any], name: str, default: float, *, minimum: float,
                   above: bool = False, integer: bool = True) -> Any:
    value = params.get(name)
    value = default if value is None else value
    try:
        number = int(value) if integer and not isinstance(value, bool) else float(value)
        if isinstance(value, bool) or (integer and float(value) != number):
            raise ValueError(value)
    except (TypeError, ValueError) as exc:
        raise LogReviewError(msg=f"{name} {value!r} must be a {'whole ' if integer else ''}number") from exc
    if number < minimum or (above and number <= minimum):
        raise LogReviewError(msg=f"{name} must be {'above' if above else 'at least'} {minimum:g}, got {value!r}")
    return number


# --------------------------------------------------------------------------- literals a pattern needs


def required_literals(regex: str, minimum: int = 3) -> tuple[str, ...] | None:
    """Strings of which every match of ``regex`` contains one, or None when none is known.

    ``Failed password|authentication failure`` needs one of its two halves, ``user \\w+ denied`` needs
    ``denied``. Conservative: case-insensitive patterns, literals shorter than ``minimum`` (found on too many
    lines to help) and anything the parser reports differently give None (the regex then runs on the block).
    """
    try:
        parsed = _sre_parse.parse(regex)
        if parsed.state.flags & re.IGNORECASE:
            return None
        found = _needed(list(parsed))
    except (re.error, AttributeError, TypeError, ValueError, IndexError):  # a private parser: a surprise means "unknown"
        return None
    if not found or min(len(text) for text in found) < minimum or any("\n" in text for text in found):
        return None
    return tuple(sorted(found))


_REPEATS = tuple(getattr(_sre_constants, name) for name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")
                 if hasattr(_sre_constants, name))


def _score(candidate: frozenset[str]) -> tuple[int, int]:
    return (min(len(text) for text in candidate), -len(candidate))


def _needed(items: list[tuple[Any, Any]]) -> frozenset[str] | None:
    """For one sequence of the parsed pattern: the best set of strings one of which every match contains."""
    best: frozenset[str] | None = None
    run: list[str] = []

    def consider(candidate: frozenset[str] | None) -> None:
        nonlocal best
        if candidate and (best is None or _score(candidate) > _score(best)):
            best = candidate

    c = _sre_constants
    for op, av in items:
        if op is c.LITERAL:
            run.append(chr(av))
            continue
        consider(frozenset({"".join(run)}) if run else None)
        run = []
        if op is c.SUBPATTERN:
            _group, add_flags, _del_flags, sub = av
            if not add_flags & re.IGNORECASE:
                consider(_needed(list(sub)))
        elif op is c.BRANCH:
            alternatives = [_needed(list(branch)) for branch in av[1]]
            if alternatives and all(alternatives):
                consider(frozenset().union(*alternatives))  # type: ignore[arg-type]
        elif op in _REPEATS and av[0] >= 1:
            consider(_needed(list(av[2])))
        elif op is getattr(c, "ATOMIC_GROUP", None):
            consider(_needed(list(av)))
        # Anything else (classes, anchors, lookarounds, back references) needs no literal and ends the run.
    consider(frozenset({"".join(run)}) if run else None)
    return best


# --------------------------------------------------------------------------- timestamps

PRESETS: dict[str, tuple[str, str | None]] = {
    # name: (regex whose first group is the stamp, strptime format; None = ISO 8601 parsed here)
    "iso8601": (r"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:\s?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)(?![\d:]))?)",
                None),
    "syslog": (r"^([A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2})\b", "%b %d %H:%M:%S"),
    "nginx": (r"\[(\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\]", "%d/%b/%Y:%H:%M:%S %z"),
}
PRESETS["common-log"] = PRESETS["nginx"]
# strptime directives we can turn into a regex (to find the stamp when no regex is given).
_DIRECTIVES = {
    "Y": r"\d{4}", "y": r"\d{2}", "m": r"[ \d]?\d", "d": r"[ \d]?\d", "H": r"[ \d]?\d", "I": r"[ \d]?\d",
    "M": r"\d{2}", "S": r"\d{2}", "f": r"\d{1,6}", "z": r"(?:Z|[+-]\d{2}:?\d{2}(?::?\d{2})?)",
    "b": r"[A-Za-z]{3}", "B": r"[A-Za-z]+", "a": r"[A-Za-z]{3}", "A": r"[A-Za-z]+", "p": r"[AaPp][Mm]",
    "j": r"\d{1,3}", "%": "%",
}
_DIRECTIVE = re.compile(r"%(.)")


def _format_regex(fmt: str) -> str:
    parts, last = [], 0
    for match in _DIRECTIVE.finditer(fmt):
        literal = fmt[last:match.start()]
        parts.append(r"\s+".join(re.escape(piece) for piece in literal.split()) + (r"\s+" if literal[-1:].isspace() else ""))
        parts.append(_DIRECTIVES[match.group(1)])
        last = match.end()
    parts.append(re.escape(fmt[last:]))
    return "(" + "".join(parts) + ")"


class StampParser:
    """Finds and parses the timestamp of a line by a declared format; naive stamps are in ``timezone``."""

    def __init__(self, raw: Any, now: datetime.datetime) -> None:
        raw = {} if raw is None else raw
        if not isinstance(raw, Mapping):
            raise LogReviewError(msg=f"timestamp must be a dict with format, regex and timezone, got {raw!r}")
        unknown = sorted(set(raw) - TIMESTAMP_KEYS)
        if unknown:
            raise LogReviewError(msg=f"timestamp: unknown key(s) {', '.join(unknown)}; allowed: format, regex, timezone")
        fmt = raw.get("format") or "iso8601"
        if not isinstance(fmt, str):
            raise LogReviewError(msg=f"timestamp.format {fmt!r} must be a preset name or a strptime format")
        self.name = fmt
        if "%" not in fmt:
            if fmt not in PRESETS:
                raise LogReviewError(msg=f"timestamp.format {fmt!r} is neither a preset ({', '.join(sorted(PRESETS))}) "
                                         f"nor a strptime format (it has no % directive)")
            default_regex, self.format = PRESETS[fmt]
        else:
            self.format = fmt
            directives = _DIRECTIVE.findall(fmt)
            unknown = sorted({d for d in directives if d not in _DIRECTIVES})
            if unknown or fmt.count("%") != len(directives) + fmt.count("%%"):
                raise LogReviewError(msg=f"timestamp.format {fmt!r}: unsupported directive(s) "
                                         f"{', '.join('%' + d for d in unknown) or '(a trailing %)'}; "
                                         f"supported: {' '.join('%' + d for d in sorted(_DIRECTIVES))}")
            if not (("d" in directives and {"m", "b", "B"} & set(directives)) or "j" in directives):
                raise LogReviewError(msg=f"timestamp.format {fmt!r} has no date fields: it needs %d with %m, %b or "
                                         f"%B, or %j")
            default_regex = _format_regex(fmt)
        regex = raw.get("regex") or default_regex
        self.regex = _compile(regex, "timestamp")
        if not self.regex.groups:
            raise LogReviewError(msg=f"timestamp.regex {regex!r} needs a group around the stamp")
        zone = raw.get("timezone") or "UTC"
        self.timezone_name = str(zone)
        try:
            self.timezone: datetime.tzinfo = datetime.timezone.utc if zone == "UTC" else ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise LogReviewError(msg=f"timestamp.timezone {zone!r} is not an IANA timezone") from exc
        self.now = now
        self.needs_year = self.format is not None and not {"Y", "y"} & set(_DIRECTIVE.findall(self.format))
        self._cache: dict[str, datetime.datetime | None] = {}

    def stamp(self, line: str) -> datetime.datetime | None:
        """The line's timestamp (aware), or None when the line has none the format reads."""
        match = self.regex.search(line)
        if not match or match.group(1) is None:
            return None
        text = match.group(1)
        if text in self._cache:
            return self._cache[text]
        if len(self._cache) > 4096:  # consecutive lines share their second; a bounded cache is enough
            self._cache.clear()
        value = self._cache[text] = self._parse(text)
        return value

    def _parse(self, text: str) -> datetime.datetime | None:
        if self.format is None:
            value = parse_iso8601(text.strip())
        elif self.needs_year:
            value = self._parse_yearless(text)
        else:
            value = self._strptime(self.format, text)
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=self.timezone)
        return value

    @staticmethod
    def _strptime(fmt: str, text: str) -> datetime.datetime | None:
        try:
            return datetime.datetime.strptime(text, fmt)
        except ValueError:
            return None

    def _parse_yearless(self, text: str) -> datetime.datetime | None:
        """No year in the stamp (syslog): the year that puts it not after now (so Dec 31 read on Jan 1 is last year)."""
        local_now = self.now.astimezone(self.timezone)
        for year in (local_now.year, local_now.year - 1):
            # The year goes in before parsing: strptime's default 1900 has no Feb 29.
            value = self._strptime(f"%Y {self.format}", f"{year} {text}")
            if value is None:
                continue
            aware = value if value.tzinfo else value.replace(tzinfo=self.timezone)
            # A day of slack: a stamp a little ahead is a clock or timezone problem the review reports, not a line
            # of last year (the year turns over months, not hours, ahead).
            if aware <= self.now + datetime.timedelta(days=1):
                return value
        return None


# --------------------------------------------------------------------------- files


_NUMBERED = r"\.(\d+)" + _COMPRESSED
_DATED = r"-(\d{8}(?:\d{2})?(?:-\d+)?)" + _COMPRESSED


def rotated_files(log: LogFile) -> list[str]:
    """The rotated files of ``log``, newest first: ``<file>.1``, ``<file>.2.gz``, ``<file>-YYYYMMDD[.gz]``...

    Discovered next to the file unless ``log.rotated`` names them (globs; relative ones next to the file).
    """
    directory, base = os.path.split(log.path)
    numbered = re.compile(re.escape(base) + _NUMBERED + "$")
    dated = re.compile(re.escape(base) + _DATED + "$")
    if log.rotated is None:
        try:
            names = os.listdir(directory or ".")
        except OSError:
            return []
        paths = [os.path.join(directory, name) for name in names if numbered.match(name) or dated.match(name)]
    else:
        paths = sorted({found for pattern in log.rotated
                        for found in glob.glob(os.path.join(directory, os.path.expanduser(pattern)))})
    given = os.path.abspath(log.path)
    paths = [path for path in paths if os.path.abspath(path) != given and os.path.isfile(path)]

    def newest_first(path: str) -> tuple[int, Any]:
        name = os.path.basename(path)
        by_number, by_date = numbered.match(name), dated.match(name)
        if by_number and all(numbered.match(os.path.basename(p)) for p in paths):
            return (0, int(by_number.group(1)))
        if by_date and all(dated.match(os.path.basename(p)) for p in paths):
            return (0, [-int(part) for part in by_date.group(1).split("-")])
        return (1, -_mtime(path))  # mixed or unknown names: the last written first

    return sorted(paths, key=newest_first)


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def open_log(path: str) -> BinaryIO:
    for suffix, opener in OPENERS.items():
        if path.endswith(suffix):
            return opener(path)
    # The caller closes it (a with block around open_log).
    return open(path, "rb")  # pylint: disable=consider-using-with


def read_blocks(stream: BinaryIO, block_chars: int = BLOCK_CHARS,
                max_line_chars: int = MAX_LINE_CHARS) -> Iterator[tuple[str, int]]:
    """(text, end): ``text[:end]`` is whole lines, each ending in a newline; memory stays about two blocks."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    carry = ""
    skipping = False  # dropping the rest of a line longer than max_line_chars
    while True:
        raw = stream.read(block_chars)
        text = decoder.decode(raw, final=not raw)
        if "\r" in text:  # CRLF logs: lines end at \n, and $ in a pattern means before the \r\n
            text = text.replace("\r\n", "\n")
        if skipping:
            cut = text.find("\n")
            if cut == -1:
                if not raw:
                    return
                continue
            text, skipping = text[cut + 1:], False
        if carry:
            text = carry + text
        end = text.rfind("\n") + 1
        if end:
            yield text, end
        carry = text[end:]
        if len(carry) > max_line_chars:
            yield carry[:max_line_chars] + "\n", max_line_chars + 1
            carry, skipping = "", True
        if not raw:
            if carry:
                yield carry + "\n", len(carry) + 1
            return


def first_stamp(path: str, parser: StampParser) -> datetime.datetime | None:
    """The first timestamp in the first 64 KiB of a file (decompressed): where the file starts in time."""
    with open_log(path) as stream:
        head = stream.read(FIRST_STAMP_BYTES).decode("utf-8", "replace")
    for line in head.splitlines():
        stamp = parser.stamp(line)
        if stamp is not None:
            return stamp
    return None


# --------------------------------------------------------------------------- the scan


@dataclass
class Tally:
    """What one pattern found in one log (and its rotated files)."""

    count: int = 0
    unparsed: int = 0
    matched: int = 0
    future: int = 0  # dated after now (beyond FUTURE_TOLERANCE): a wrong timezone hides the newest lines
    first_seen: datetime.datetime | None = None
    last_seen: datetime.datetime | None = None
    newest: deque = field(default_factory=deque)


@dataclass
class LogScan:
    """The scan of one log, its rotated files included, for every pattern."""

    patterns: list[LogPattern]
    parser: StampParser
    since: datetime.datetime
    until: datetime.datetime
    keep_lines: int
    keep_chars: int
    tallies: list[Tally] = field(default_factory=list)
    files_read: list[str] = field(default_factory=list)
    files_skipped: list[str] = field(default_factory=list)
    lines_read: int = 0
    current: str | None = None  # the file being opened, for the error message

    def __post_init__(self) -> None:
        self.tallies = [Tally(newest=deque(maxlen=self.keep_lines)) for _pattern in self.patterns]

    def plan(self, base: str, rotated: list[str]) -> list[str]:
        """The files to read, oldest first. Rotated files come newest first: once a file starts before the window,
        the ones after it are older still and are skipped without being opened."""
        wanted = []
        for position, path in enumerate([base, *rotated]):
            self.current = path
            try:
                start = first_stamp(path, self.parser)
            except FileNotFoundError:
                if path == base:
                    raise
                continue  # rotated away meanwhile
            wanted.append(path)
            if start is not None and start < self.since:
                self.files_skipped.extend(rotated[position:])
                break
        return wanted[::-1]

    def read(self, path: str) -> None:
        self.current = path
        with open_log(path) as stream:
            for text, end in read_blocks(stream):
                self.scan_block(text, end)
        self.files_read.append(path)

    def scan_block(self, text: str, end: int) -> None:
        self.lines_read += text.count("\n", 0, end)
        hits: dict[int, list[int]] = {}
        for index, pattern in enumerate(self.patterns):
            for start in _candidate_lines(pattern, text, end):
                found = hits.setdefault(start, [])
                if not found or found[-1] != index:
                    found.append(index)
        for start in sorted(hits):
            line = text[start:text.find("\n", start, end)]
            matched = [index for index in hits[start] if self.patterns[index].line.search(line)]
            if matched:
                self.count(line, matched)

    def count(self, line: str, matched: list[int]) -> None:
        stamp = self.parser.stamp(line)
        for index in matched:
            tally = self.tallies[index]
            tally.matched += 1
            if stamp is None:
                tally.unparsed += 1
            elif stamp > self.until + FUTURE_TOLERANCE:
                tally.future += 1
            elif self.since <= stamp:
                tally.count += 1
                tally.first_seen = stamp if tally.first_seen is None else min(tally.first_seen, stamp)
                tally.last_seen = stamp if tally.last_seen is None else max(tally.last_seen, stamp)
                if self.keep_lines:
                    # (text, longer than shown): the margin lets redaction see a secret the cut would split.
                    tally.newest.append((line[:self.keep_chars + REDACT_MARGIN], len(line) > self.keep_chars))


def _candidate_lines(pattern: LogPattern, text: str, end: int) -> Iterator[int]:
    """Starts of the lines of ``text[:end]`` that may match: a literal it needs is there, or the block regex hit."""
    find = text.find
    if pattern.literals is None:
        search, position = pattern.block.search, 0
        while True:
            match = search(text, position, end)
            if not match:
                return
            yield text.rfind("\n", 0, match.start()) + 1
            position = find("\n", match.start(), end) + 1  # the next line: a match across lines is checked per line
            if not position:
                return
    for literal in pattern.literals:
        at = find(literal, 0, end)
        while at != -1:
            yield text.rfind("\n", 0, at) + 1
            newline = find("\n", at, end)
            if newline == -1:
                break
            at = find(literal, newline + 1, end)


# --------------------------------------------------------------------------- records


def redact(line: str, redactions: list[tuple[re.Pattern, int]]) -> str:
    """``line`` with each redaction's group (or whole match, group 0) replaced by <redacted>."""
    for regex, group in redactions:
        line = regex.sub(lambda match, group=group: _redacted(match, group), line)
    return line


def _redacted(match: re.Match, group: int) -> str:
    if match.group(group) is None:
        return match.group(0)
    start, end = match.span(group)
    whole_start = match.start(0)
    return match.group(0)[:start - whole_start] + REDACTED + match.group(0)[end - whole_start:]


def shown_line(kept: tuple[str, bool], redactions: list[tuple[re.Pattern, int]], max_chars: int) -> str:
    """A kept line as the result shows it: secrets redacted first (on the whole kept text), then truncated."""
    text, longer = kept
    text = redact(text.rstrip("\r"), redactions)
    if longer or len(text) > max_chars:
        return text[:max_chars] + "..."
    return text


def _iso(value: datetime.datetime | None) -> str | None:
    return None if value is None else value.astimezone(datetime.timezone.utc).isoformat()


@dataclass(frozen=True)
class Review:
    logs: list[LogFile]
    patterns: list[LogPattern]
    parser: StampParser
    hours: float
    now: datetime.datetime
    newest_lines: int
    line_max_chars: int
    redactions: list[tuple[re.Pattern, int]]

    @property
    def since(self) -> datetime.datetime:
        return self.now - datetime.timedelta(hours=self.hours)


def parse_review(params: Mapping[str, Any]) -> Review:
    """Every option checked before anything is read; a bad one raises LogReviewError naming it."""
    hours = parse_positive(params, "hours", 24, minimum=0, above=True, integer=False)
    if not math.isfinite(hours) or hours > MAX_HOURS:
        raise LogReviewError(msg=f"hours {params.get('hours')!r} must be a number of hours up to {MAX_HOURS} (ten years)")
    newest_lines = parse_positive(params, "newest_lines", 5, minimum=0)
    line_max_chars = parse_positive(params, "line_max_chars", 200, minimum=1)
    # Each pattern keeps newest_lines lines in a deque: 2**63 overflowed its maxlen (a traceback), and a report of
    # more lines than this is no summary.
    for name, value in (("newest_lines", newest_lines), ("line_max_chars", line_max_chars)):
        if value > MAX_REPORTED[name]:
            raise LogReviewError(msg=f"{name} must be at most {MAX_REPORTED[name]}, got {params.get(name)!r}")
    patterns = parse_patterns(params.get("patterns"))
    logs = parse_files(params.get("files"))
    now = parse_now(params.get("now"))
    return Review(logs=logs, patterns=patterns, parser=StampParser(params.get("timestamp"), now), hours=hours,
                  now=now, newest_lines=newest_lines, line_max_chars=line_max_chars,
                  redactions=parse_redactions(params.get("redact")))


def scan_log(log: LogFile, review: Review) -> tuple[LogScan, str | None]:
    """Read one log and its rotated files; (scan, None), or (what was read so far, the read error)."""
    scan = LogScan(review.patterns, review.parser, review.since, review.now, review.newest_lines, review.line_max_chars)
    try:
        for path in scan.plan(log.path, rotated_files(log)):
            try:
                scan.read(path)
            except FileNotFoundError:
                if path == log.path:
                    raise
    except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:  # permissions, a directory, a corrupt archive
        where = getattr(exc, "filename", None) or scan.current or log.path
        return scan, f"cannot read {where}: {getattr(exc, 'strerror', None) or exc}"
    return scan, None


def log_records(log: LogFile, review: Review) -> list[dict[str, Any]]:
    """One record per pattern for one log."""
    started = time.monotonic()
    window = f"in the last {review.hours:g}h (since {_iso(review.since)})"
    if not os.path.lexists(log.path):
        return [_record(log, pattern, "unknown", f"{log.path}: no such file, nothing counted {window}", review,
                        remedy=f"Check that {log.path} is the log to review and that its service still writes it: "
                               f"the review could not read it.")
                for pattern in review.patterns]
    scan, error = scan_log(log, review)
    seconds = time.monotonic() - started
    records = []
    for pattern, tally in zip(review.patterns, scan.tallies):
        figures = {"count": tally.count, "future": tally.future, "files_read": list(scan.files_read), "files_skipped": list(scan.files_skipped),
                   "lines_read": scan.lines_read, "unparsed": tally.unparsed, "first_seen": _iso(tally.first_seen),
                   "last_seen": _iso(tally.last_seen),
                   "newest": [shown_line(kept, review.redactions, review.line_max_chars) for kept in tally.newest]}
        read = f"{len(scan.files_read)} file(s), {scan.lines_read} line(s) read"
        unparsed = (f"; {tally.unparsed} matching line(s) have no timestamp the format {review.parser.name!r} reads"
                    if tally.unparsed else "")
        if tally.future:
            unparsed += f"; {tally.future} matching line(s) dated after now"
        if error:
            records.append(_record(log, pattern, "failed", f"{error} ({read} before it)", review, seconds=seconds,
                                   remedy=f"Let the review read {log.path} and its rotated files (run it as root or "
                                          f"a member of their group, or repair the file it names).", **figures))
        elif tally.matched and tally.matched == tally.unparsed:
            records.append(_record(log, pattern, "unknown",
                                   f"{tally.matched} matching line(s) but none with a timestamp the format "
                                   f"{review.parser.name!r} reads: cannot count them {window}; {read}", review,
                                   seconds=seconds,
                                   remedy=f"Set timestamp.format (and timestamp.regex) to how {log.path} writes its "
                                          f"timestamps, then run the review again.", **figures))
        elif tally.count > pattern.max:
            records.append(_record(log, pattern, "breach",
                                   f"{tally.count} matching line(s) {window}, over the limit of {pattern.max}; "
                                   f"{read}{unparsed}", review, seconds=seconds,
                                   remedy=f"Investigate the '{pattern.name}' lines in {log.path} (newest listed) and "
                                          f"stop their source; raise max only if this many is normal.", **figures))
        elif tally.future:
            records.append(_record(log, pattern, "unknown",
                                   f"{tally.future} matching line(s) dated after now (beyond "
                                   f"{int(FUTURE_TOLERANCE.total_seconds() // 60)} min): their timezone is probably "
                                   f"not {review.parser.timezone_name!r}, so the newest lines cannot be placed "
                                   f"{window}; {tally.count} counted; {read}", review, seconds=seconds,
                                   remedy=f"Set timestamp.timezone to the timezone {log.path} writes its stamps in "
                                          f"(or fix the writer's clock), then run the review again.", **figures))
        elif tally.count <= pattern.max < tally.count + tally.unparsed:
            records.append(_record(log, pattern, "unknown",
                                   f"{tally.count} matching line(s) {window} and {tally.unparsed} more without a "
                                   f"timestamp the format {review.parser.name!r} reads: with them the limit of "
                                   f"{pattern.max} may be passed; {read}", review, seconds=seconds,
                                   remedy=f"Set timestamp.format (and timestamp.regex) to every way {log.path} writes "
                                          f"its timestamps, then run the review again.", **figures))
        else:
            records.append(_record(log, pattern, "ok", f"{tally.count} matching line(s) {window}, limit {pattern.max}; "
                                                       f"{read}{unparsed}", review, seconds=seconds, **figures))
    return records


def _record(log: LogFile, pattern: LogPattern, status: str, detail: str, review: Review, *,
            seconds: float | None = None, remedy: str | None = None, **figures: Any) -> dict[str, Any]:
    after: dict[str, Any] = {"count": None, "future": 0, "files_read": [], "files_skipped": [], "lines_read": 0, "unparsed": 0,
                             "newest": [], "first_seen": None, "last_seen": None}
    after.update(figures)
    after.update({"max": pattern.max, "hours": review.hours, "since": _iso(review.since), "until": _iso(review.now)})
    if remedy:
        after["remedy"] = remedy
    return make_record(f"{log.path} {pattern.name}", ACTION, status, detail, after=after, seconds=seconds)


def summary(records: list[dict[str, Any]], review: Review) -> str:
    head = f"{len(review.logs)} log(s), {len(review.patterns)} pattern(s), last {review.hours:g}h"
    bad = [record for record in records if record["status"] != "ok"]
    if not bad:
        return f"{head}: all within their limits"
    return f"{head}: " + "; ".join(f"{record['status']}: {record['name']}" for record in bad)


def run_log_pattern_review(params: Mapping[str, Any], *, check_mode: bool = False,
                           diff_mode: bool = False) -> dict[str, Any]:
    """Read-only: check mode reads the same files and returns the same records."""
    review = parse_review(params)
    records = [record for log in review.logs for record in log_records(log, review)]
    return {"changed": False, "msg": summary(records, review), "records": records}
