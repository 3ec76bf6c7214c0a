"""The importer contract and registry.

An importer reads one third-party results file (nmap XML, Nuclei JSONL, ...) and
returns an :class:`~scans.findings.candidates.ImportResult`, or raises :class:`ImportRejected`
naming the file, where in it, and why. A file is taken whole or not at all: a parser
collects everything first and returns only at the end, so a bad record on line
90,000 never leaves 89,999 findings half-imported.

No Django here, so the parsers can be fuzzed and benchmarked alone.
"""

from __future__ import annotations

import abc
import functools
import io
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, ClassVar, TypeVar, Union

from scans.findings.candidates import Coverage, ImportResult, severity_from_cvss, severity_from_word
from scans.plugins import Plugins

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
EVIDENCE_TEXT_LIMIT = 2048
REFERENCE_LIMIT = 20
_BOM = b"\xef\xbb\xbf"

Source = Union[str, os.PathLike, bytes, bytearray, memoryview, IO[bytes]]
_T = TypeVar("_T")


class ImportRejected(Exception):
    """The file cannot be imported; ``str()`` says which file, where, and why.

    Position is whatever the format has: ``line``/``column`` (text formats),
    ``offset`` (bytes), ``path`` (a JSON path such as ``$.Results[2].Vulnerabilities[0]``)
    or ``record`` (0-based index of the record in the file).
    ``internal`` marks a rejection that came from the safety net rather than from a
    deliberate check: the file was still refused, but the parser missed a case.
    """

    def __init__(
        self,
        filename: str,
        reason: str,
        *,
        line: int | None = None,
        column: int | None = None,
        offset: int | None = None,
        path: str | None = None,
        record: int | None = None,
        internal: bool = False,
    ) -> None:
        self.filename = filename
        self.reason = reason
        self.line = line
        self.column = column
        self.offset = offset
        self.path = path
        self.record = record
        self.internal = internal
        super().__init__(self.message)

    @property
    def position(self) -> str:
        parts = []
        if self.line is not None:
            parts.append(f"line {self.line}" + (f", column {self.column}" if self.column is not None else ""))
        if self.record is not None and self.line is None:
            parts.append(f"record {self.record}")
        if self.offset is not None:
            parts.append(f"byte {self.offset}")
        if self.path:
            parts.append(f"at {self.path}")
        return ", ".join(parts)

    @property
    def message(self) -> str:
        where = self.position
        return f"{self.filename}: {where}: {self.reason}" if where else f"{self.filename}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "reason": self.reason,
            "position": self.position,
            "line": self.line,
            "column": self.column,
            "offset": self.offset,
            "path": self.path,
            "record": self.record,
        }


@dataclass(slots=True)
class ImportContext:
    """Per-file state a parser carries: the file's name, the host to assume, and where it is.

    Parsers update ``line``/``record``/``path`` as they go so that even an error the
    safety net catches still says roughly where it happened.
    """

    filename: str
    default_host: str = ""
    strict: bool = False  # refuse the file for a record that names no target, instead of skipping it
    line: int | None = None
    record: int | None = None
    path: str | None = None

    def reject(self, reason: str, **position: Any) -> ImportRejected:
        where = {"line": self.line, "record": self.record, "path": self.path}
        where.update(position)
        return ImportRejected(self.filename, reason, **where)


class Importer(abc.ABC):
    name: ClassVar[str]
    formats: ClassVar[tuple[str, ...]]  # what the upload form offers: ("json", "jsonl"), ("xml",)
    description: ClassVar[str] = ""
    max_bytes: ClassVar[int] = DEFAULT_MAX_BYTES
    # The format names scanned things (images, repositories), never addresses: ``--node`` places them.
    hosts_are_artifacts: ClassVar[bool] = False

    def parse(
        self,
        source: Source,
        filename: str | None = None,
        *,
        max_bytes: int | None = None,
        default_host: str = "",
        strict: bool = False,
    ) -> ImportResult:
        """Read a whole file (path, bytes or binary stream) into an ImportResult.

        ``default_host`` names the host for formats that carry none (SARIF, some Trivy
        reports); a file that names its hosts keeps its own. ``strict`` refuses a file for
        a record that names no target at all, which importers otherwise skip and report
        (``ImportResult.skipped``); a malformed file is refused either way.
        """
        filename = filename or _name_of(source)
        limit = self.max_bytes if max_bytes is None else max_bytes
        context = ImportContext(filename=filename, default_host=default_host, strict=strict)
        with open_capped(source, filename, limit) as stream:
            try:
                result = self.read(stream, context)
            except ImportRejected:
                raise
            except RecursionError as exc:
                raise context.reject("nested too deeply to read") from exc
            except MemoryError as exc:
                raise context.reject("too large to hold in memory") from exc
            except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
                # The safety net: every parser validates what it reads, but a file the
                # parser did not foresee must still be refused cleanly, never crash the job.
                reject = context.reject(f"unexpected content ({type(exc).__name__}: {exc})")
                reject.internal = True
                raise reject from exc
        if default_host and not result.coverage:
            result.coverage.append(Coverage(host=default_host, whole_host=True))
        return result

    @abc.abstractmethod
    def read(self, stream: BinaryIO, context: ImportContext) -> ImportResult:
        """Parse the stream; raise ``context.reject(...)`` on anything not understood."""

    def new_result(self, context: ImportContext) -> ImportResult:
        """The empty result of one file, named after this importer and the file."""
        return ImportResult(source=self.name, filename=context.filename, hosts_are_artifacts=self.hosts_are_artifacts)


REGISTRY: Plugins[Importer] = Plugins("importer", unknown=LookupError)
register = REGISTRY.register
get_importer = REGISTRY.create


def load_all() -> dict[str, type[Importer]]:
    """Every registered importer: complete once this module is imported (see ``scans.plugins``)."""
    return REGISTRY


# -- telling a file's format from its first bytes --------------------------------------

DETECT_BYTES = 64 * 1024  # what detection reads: every format names itself well before this

# (format, markers any of which names it), in order: SARIF first, as its results may quote anything.
_MARKERS: tuple[tuple[str, tuple[bytes, ...]], ...] = (
    ("sarif", (b"sarif-schema", b"/sarif-2", b"sarif-2.1", b'"$schema": "https://json.schemastore.org/sarif')),
    ("nmap", (b"<nmaprun",)),
    ("openvas", (b"<report ", b"<report>", b"<get_reports_response", b"NVT Name", b"NVT OID")),
    ("nuclei", (b'"template-id"', b'"templateID"', b'"matched-at"', b'"matched"')),
    ("sslyze", (b'"server_scan_results"', b'"accepted_targets"', b'"server_connectivity_result"',
                b'"sslyze_version"')),
    ("trivy", (b'"SchemaVersion"', b'"ArtifactName"', b'"ClusterName"', b'"Vulnerabilities"',
               b'"Misconfigurations"')),
)


def format_detect(head: bytes, filename: str = "") -> str | None:
    """The importer that reads a file starting with ``head``, or None when nothing names one.

    A guess from markers each format writes near its start (nmap's ``<nmaprun``, Trivy's
    ``SchemaVersion``...); the importer still checks the whole file and refuses it if the guess
    was wrong. Binary data (a NUL byte) is no scanner's report."""
    head = head[:DETECT_BYTES].removeprefix(_BOM)
    if b"\x00" in head:
        return None
    if filename.lower().endswith(".sarif"):
        return "sarif"
    for name, markers in _MARKERS:
        if any(marker in head for marker in markers):
            return name
    return None


# -- opening a file within the size cap ---------------------------------------------


def _name_of(source: Source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name
    name = getattr(source, "name", "")
    # Only the base name: a server-side path has no place in a message shown to users.
    return Path(name).name if isinstance(name, str) and name else "<upload>"


@contextmanager
def open_capped(source: Source, filename: str, limit: int) -> Iterator[BinaryIO]:
    """Yield a binary stream of ``source``, refusing it before reading when it is over ``limit``.

    Regular files and seekable streams are measured up front; anything else (a pipe,
    a socket, /dev/zero) is read through a counter that refuses it at the limit.
    """
    too_big = f"larger than the import limit of {limit:,} bytes"
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) > limit:
            raise ImportRejected(filename, too_big)
        yield io.BytesIO(bytes(source))
        return
    if isinstance(source, (str, os.PathLike)):
        try:
            handle = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise ImportRejected(filename, f"cannot be opened ({exc.strerror or exc})") from exc
        with handle:
            yield _capped(handle, filename, limit, too_big)
        return
    if not hasattr(source, "read"):
        raise ImportRejected(filename, f"not a file, a path or bytes ({type(source).__name__})")
    yield _capped(source, filename, limit, too_big)


def first_byte(stream: BinaryIO) -> bytes:
    """The stream's first significant byte (past a UTF-8 byte order mark and white space), without
    consuming it; empty for an empty stream. What tells a format's shapes apart: a JSON array from
    JSON lines, XML from CSV."""
    if hasattr(stream, "peek"):
        head = stream.peek(4096)[:4096]
    else:  # open_capped hands over a stream that peeks or, as bytes do, seeks
        here = stream.tell()
        head = stream.read(4096)
        stream.seek(here)
    if head.startswith(_BOM):
        head = head[3:]
    return head.lstrip(b" \t\r\n")[:1]


def _capped(stream: IO[bytes], filename: str, limit: int, too_big: str) -> BinaryIO:
    size = _remaining_size(stream)
    if size is not None:
        if size > limit:
            raise ImportRejected(filename, too_big)
        return stream  # type: ignore[return-value]
    return io.BufferedReader(_CountingReader(stream, filename, limit, too_big), buffer_size=1 << 16)


def _remaining_size(stream: IO[bytes]) -> int | None:
    try:
        stat = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        stat = None
    if stat is not None:
        import stat as stat_module

        if not stat_module.S_ISREG(stat.st_mode):
            return None
        try:
            return stat.st_size - stream.tell()
        except (OSError, ValueError):
            return stat.st_size
    try:
        if not stream.seekable():
            return None
        here = stream.tell()
        end = stream.seek(0, io.SEEK_END)
        stream.seek(here)
        return end - here
    except (AttributeError, OSError, ValueError):
        return None


class _CountingReader(io.RawIOBase):
    def __init__(self, stream: IO[bytes], filename: str, limit: int, too_big: str) -> None:
        self._stream = stream
        self._filename = filename
        self._left = limit
        self._too_big = too_big

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        # Ask for one byte past the limit so a file of exactly ``limit`` bytes still passes.
        want = min(len(buffer), self._left + 1)
        data = self._stream.read(want)
        if not data:
            return 0
        if len(data) > self._left:
            raise ImportRejected(self._filename, self._too_big)
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)


# -- normalizing what the tools say ---------------------------------------------------

_CVE = re.compile(r"CVE-\d{4}-\d{4,7}", re.IGNORECASE | re.ASCII)
_CWE = re.compile(r"^\s*(?:cwe)?[-_: ]?(\d{1,6})\s*$", re.IGNORECASE | re.ASCII)

# The importers' names for the shared severity mapping.
severity_word = severity_from_word
severity_from_score = severity_from_cvss


def cvss_score(value: Any) -> float | None:
    """A CVSS score in [0, 10], from a number or a numeric string; anything else is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= 10:
        return round(float(value), 1)
    return None


def _cached_over_strings(function: Callable[[tuple[str, ...]], _T]) -> Callable[[Iterable[Any]], _T]:
    """``function`` of the strings among ``values`` (anything else is passed over), cached by them:
    a large import repeats the same few hundred rules' classifications and references."""
    cached = functools.lru_cache(maxsize=4096)(function)

    @functools.wraps(function)
    def over_values(values: Iterable[Any]) -> _T:
        return cached(tuple(v for v in values if isinstance(v, str)))

    return over_values


@_cached_over_strings
def cve_ids(values: tuple[str, ...]) -> tuple[str, ...]:
    """Every CVE id mentioned in ``values``, upper-cased, in order, once each."""
    found: dict[str, None] = {}
    for value in values:
        for match in _CVE.findall(value):
            found[match.upper()] = None
    return tuple(found)


@functools.lru_cache(maxsize=4096)
def cwe_number(value: Any) -> int | None:
    """``"CWE-79"``, ``"cwe-79"``, ``"79"`` or ``79`` -> 79; placeholders like ``"nvd-cve-other"`` -> None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value < 10**6 else None
    if isinstance(value, str):
        match = _CWE.match(value)
        if match:
            number = int(match.group(1))
            return number or None
    return None


def first_cwe(values: Iterable[Any]) -> int | None:
    for value in values:
        if isinstance(value, (str, int)):
            number = cwe_number(value)
            if number is not None:
                return number
    return None


def trim(text: str, limit: int = EVIDENCE_TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more characters]"


@_cached_over_strings
def references(values: tuple[str, ...]) -> tuple[str, ...]:
    """The references in ``values`` (links, mostly), trimmed, once each, at most ``REFERENCE_LIMIT``."""
    seen: dict[str, None] = {}
    for value in values:
        value = trim(value.strip(), 500)
        if value and value not in seen:
            seen[value] = None
            if len(seen) >= REFERENCE_LIMIT:
                break
    return tuple(seen)


def split_port(value: str) -> tuple[int | None, str]:
    """``"443/tcp"`` -> (443, "tcp"); ``"general/tcp"`` -> (None, "tcp")."""
    number, _, protocol = value.partition("/")
    protocol = protocol.strip().lower() or "tcp"
    number = number.strip()
    if number.isascii() and number.isdigit() and 0 < int(number) < 65536:
        return int(number), protocol
    return None, protocol

