"""NVD CVE API 2.0 responses and dumps, read as a stream of :class:`CveEntry`.

The input is the API's response shape (``{"resultsPerPage", ..., "format": "NVD_CVE",
"version": "2.0", "vulnerabilities": [{"cve": {...}}, ...]}``), plain or gzip-compressed
(told apart by the magic bytes, not the file name). Dumps of the whole catalog run to
hundreds of megabytes, so the file is never loaded as one tree: the top-level object is
walked by hand and each element of ``vulnerabilities`` is decoded on its own with the
C-accelerated ``json`` decoder, turned into a ``CveEntry`` and dropped, holding at most
one read chunk and one record in memory.

Entries are yielded as they are read, so an error late in a file surfaces after the
earlier entries were handed out: an importer that wants all-or-nothing wraps the
whole iteration in its transaction. Every error is a :class:`NvdFormatError` naming the
file and the line, column and character offset (in the decompressed text for gzip).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from scans.cve.cpe import Configuration, CpeError

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
CHUNK_CHARS = 1 << 20
MAX_RECORD_CHARS = 64 << 20  # one CVE is kilobytes; a runaway value is a broken file
CVSS_PREFERENCE = (("cvssMetricV31", "3.1"), ("cvssMetricV30", "3.0"), ("cvssMetricV2", "2.0"))

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_CWE = re.compile(r"^CWE-[0-9]+$")


class NvdFormatError(ValueError):
    """The file is not a readable NVD CVE API 2.0 document."""

    def __init__(self, filename: str, message: str, *, line: int = 0, column: int = 0, offset: int = -1) -> None:
        self.filename = filename
        self.line = line
        self.column = column
        self.offset = offset
        where = f"{filename}, line {line} column {column} (char {offset})" if offset >= 0 else filename
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class CveEntry:
    """One CVE as the findings engine needs it; no Django, JSON-friendly values."""

    cve_id: str
    published: datetime | None
    last_modified: datetime | None
    description: str
    cvss_score: float | None
    cvss_vector: str
    cvss_version: str  # "3.1", "3.0", "2.0" or "" when NVD has not scored it
    severity: str  # NVD's word, lower-cased: critical, high, medium, low, none or ""
    cwe_ids: tuple[str, ...]
    references: tuple[str, ...]
    configurations: tuple[Configuration, ...]
    vuln_status: str = ""  # "Analyzed", "Modified", "Rejected", ...

    @property
    def is_rejected(self) -> bool:
        return self.vuln_status.lower() == "rejected"


def parse_cve(cve: Mapping[str, Any]) -> CveEntry:
    """Turn the ``cve`` object of one ``vulnerabilities`` element into a :class:`CveEntry`.

    Raises ``KeyError``/``TypeError``/``ValueError`` on a broken record; the stream
    reader turns those into :class:`NvdFormatError` with the record's position.
    """
    cve_id = cve["id"]
    if not isinstance(cve_id, str) or not cve_id.startswith("CVE-"):
        raise ValueError(f"id {cve_id!r} is not a CVE id")
    score, vector, version, severity = _cvss(cve.get("metrics") or {})
    try:
        configurations = tuple(Configuration.from_nvd(c) for c in cve.get("configurations") or ())
    except CpeError as error:
        raise ValueError(f"{cve_id}: {error}") from None
    return CveEntry(
        cve_id=cve_id,
        published=_timestamp(cve.get("published")),
        last_modified=_timestamp(cve.get("lastModified")),
        description=_english(cve.get("descriptions") or ()),
        cvss_score=score,
        cvss_vector=vector,
        cvss_version=version,
        severity=severity,
        cwe_ids=_cwes(cve.get("weaknesses") or ()),
        references=tuple(dict.fromkeys(r["url"] for r in cve.get("references") or () if r.get("url"))),
        configurations=configurations,
        vuln_status=cve.get("vulnStatus") or "",
    )


class NvdFeed:
    """A readable NVD document. Iterate it for entries; :attr:`metadata` fills as it is read.

    ``source`` is a path or a binary file object. The top-level scalars NVD writes
    before ``vulnerabilities`` (``totalResults``, ``timestamp``...) are in ``metadata``
    by the time the first entry is yielded.
    """

    def __init__(self, source: str | os.PathLike[str] | IO[bytes], *, name: str | None = None) -> None:
        self.source = source
        if name is None:
            name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else getattr(source, "name", "<stream>")
        self.name = str(name)
        self.metadata: dict[str, Any] = {}

    def __iter__(self) -> Iterator[CveEntry]:
        if isinstance(self.source, (str, os.PathLike)):
            with open(self.source, "rb") as raw:
                yield from self._read(raw)
        else:
            yield from self._read(self.source)

    def _read(self, raw: IO[bytes]) -> Iterator[CveEntry]:
        binary = _decompressed(raw, self.name)
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="strict")
        reader = _Reader(text, self.name)
        try:
            yield from self._document(reader)
        except (EOFError, OSError, zlib.error) as error:
            # gzip reports truncation and corruption as these, mid-stream.
            raise reader.error(f"compressed data is damaged or truncated ({error})") from None
        except UnicodeDecodeError as error:
            raise reader.error(f"the file is not UTF-8 ({error.reason})") from None

    def _document(self, reader: _Reader) -> Iterator[CveEntry]:
        reader.skip_whitespace()
        if reader.peek() == "":
            raise reader.error("the file is empty")
        if reader.peek() != "{":
            raise reader.error("expected a JSON object with a 'vulnerabilities' array")
        reader.advance()
        saw_vulnerabilities = False
        while True:
            reader.skip_whitespace()
            if reader.peek() == "}" and not self.metadata and not saw_vulnerabilities:
                reader.advance()
                break
            key = reader.value()
            if not isinstance(key, str):
                raise reader.error("expected a property name")
            reader.skip_whitespace()
            reader.expect(":")
            reader.skip_whitespace()
            if key == "vulnerabilities":
                self._check_header()
                saw_vulnerabilities = True
                yield from self._vulnerabilities(reader)
            elif key == "CVE_Items":
                raise reader.error("this is an NVD 1.1 JSON feed; only the CVE API 2.0 format is read")
            else:
                self.metadata[key] = reader.value()
            if not reader.another("}"):
                break
        reader.skip_whitespace()
        if reader.peek() != "":
            raise reader.error("unexpected data after the end of the document")
        if not saw_vulnerabilities:
            raise reader.error("the document has no 'vulnerabilities' array")

    def _check_header(self) -> None:
        fmt = self.metadata.get("format")
        if fmt is not None and fmt != "NVD_CVE":
            raise NvdFormatError(self.name, f"format is {fmt!r}, expected 'NVD_CVE'")
        version = self.metadata.get("version")
        if version is not None and not str(version).startswith("2."):
            raise NvdFormatError(self.name, f"version is {version!r}, expected the CVE API 2.0 format")

    def _vulnerabilities(self, reader: _Reader) -> Iterator[CveEntry]:
        reader.expect("[")
        index = 0
        reader.skip_whitespace()
        if reader.peek() == "]":
            reader.advance()
            return
        while True:
            reader.skip_whitespace()
            where = reader.position()
            item = reader.value()
            try:
                if not isinstance(item, dict) or not isinstance(item.get("cve"), dict):
                    raise ValueError("expected an object with a 'cve' object")
                entry = parse_cve(item["cve"])
            except (KeyError, TypeError, ValueError) as error:
                detail = f"missing {error}" if isinstance(error, KeyError) else str(error)
                raise reader.error(f"vulnerabilities[{index}]: {detail}", at=where) from None
            yield entry
            index += 1
            if not reader.another("]"):
                return


def iter_cve_entries(source: str | os.PathLike[str] | IO[bytes], *, name: str | None = None) -> Iterator[CveEntry]:
    """Yield every :class:`CveEntry` of an NVD CVE API 2.0 document, plain or gzip."""
    return iter(NvdFeed(source, name=name))


class _Reader:
    """A JSON tokenizer over a text stream for the few structural steps done by hand.

    Whole values are decoded by ``json.JSONDecoder.raw_decode`` from a sliding buffer;
    only the text not yet consumed is kept.
    """

    def __init__(self, stream: IO[str], name: str) -> None:
        self.stream = stream
        self.name = name
        self.buffer = ""
        self.pos = 0
        self.eof = False
        self.dropped = 0  # characters discarded before buffer[0]
        self.dropped_lines = 0
        self.dropped_column = 0  # characters after the last discarded newline
        self.decoder = json.JSONDecoder()

    def fill(self) -> bool:
        if self.eof:
            return False
        chunk = self.stream.read(CHUNK_CHARS)
        if not chunk:
            self.eof = True
            return False
        consumed = self.buffer[: self.pos]
        newlines = consumed.count("\n")
        if newlines:
            self.dropped_lines += newlines
            self.dropped_column = len(consumed) - consumed.rfind("\n") - 1
        else:
            self.dropped_column += len(consumed)
        self.dropped += self.pos
        self.buffer = self.buffer[self.pos:] + chunk
        self.pos = 0
        return True

    def skip_whitespace(self) -> None:
        while True:
            self.pos = _WHITESPACE.match(self.buffer, self.pos).end()
            if self.pos < len(self.buffer) or not self.fill():
                return

    def peek(self) -> str:
        if self.pos >= len(self.buffer) and not self.fill():
            return ""
        return self.buffer[self.pos]

    def advance(self) -> None:
        self.pos += 1

    def expect(self, char: str) -> None:
        found = self.peek()
        if not found:
            raise self.error(f"unexpected end of file where {char!r} was expected: the document is truncated")
        if found != char:
            raise self.error(f"expected {char!r}, found {found!r}")
        self.pos += 1

    def another(self, closer: str) -> bool:
        """After a member of an object or an element of an array: True when a comma says another
        follows, else ``closer`` must end the object or array (it is consumed)."""
        self.skip_whitespace()
        if self.peek() == ",":
            self.advance()
            return True
        self.expect(closer)
        return False

    def value(self) -> Any:
        if self.peek() == "":
            raise self.error("unexpected end of file: the document is truncated")
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buffer, self.pos)
            except json.JSONDecodeError as error:
                if not self.eof and self._may_be_cut(error) and self._grow():
                    continue
                if error.msg.startswith("Unterminated string") or error.pos >= len(self.buffer.rstrip()):
                    raise self.error("unexpected end of file: the document is truncated") from None
                raise self.error(error.msg, at=self._absolute(error.pos)) from None
            if end >= len(self.buffer) and not self.eof and self._grow():
                continue  # a number at the end of the buffer may go on in the next chunk
            self.pos = end
            return value

    def _may_be_cut(self, error: json.JSONDecodeError) -> bool:
        """Could more input fix this? Then it is the chunk boundary, not the file."""
        return error.msg.startswith("Unterminated string") or error.pos >= len(self.buffer) - 16

    def _grow(self) -> bool:
        if len(self.buffer) - self.pos > MAX_RECORD_CHARS:
            raise self.error(f"a single value is larger than {MAX_RECORD_CHARS} characters")
        return self.fill()

    def position(self) -> int:
        return self.dropped + self.pos

    def _absolute(self, buffer_pos: int) -> int:
        return self.dropped + buffer_pos

    def error(self, message: str, *, at: int | None = None) -> NvdFormatError:
        offset = self.position() if at is None else at
        local = max(0, min(offset - self.dropped, len(self.buffer)))
        if local < 0 or offset < self.dropped:
            return NvdFormatError(self.name, message, offset=offset)
        newlines = self.buffer.count("\n", 0, local)
        if newlines:
            column = local - self.buffer.rfind("\n", 0, local)
        else:
            column = self.dropped_column + local + 1
        return NvdFormatError(
            self.name, message, line=self.dropped_lines + newlines + 1, column=column, offset=offset
        )


def _decompressed(raw: IO[bytes], name: str) -> IO[bytes]:
    buffered = raw if hasattr(raw, "peek") else io.BufferedReader(raw)  # type: ignore[arg-type]
    magic = buffered.peek(4)[:4]
    if magic[:2] == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=buffered, mode="rb")
    if magic == ZIP_MAGIC:
        raise NvdFormatError(name, "this is a zip archive; extract the JSON file (or gzip it) first")
    return buffered


def _cvss(metrics: Mapping[str, Any]) -> tuple[float | None, str, str, str]:
    for key, version in CVSS_PREFERENCE:
        candidates = metrics.get(key) or ()
        if not candidates:
            continue
        # NVD's own analysis is "Primary"; a CNA's score is "Secondary".
        chosen = next((m for m in candidates if m.get("type") == "Primary"), candidates[0])
        data = chosen.get("cvssData") or {}
        score = data.get("baseScore")
        severity = data.get("baseSeverity") or chosen.get("baseSeverity") or ""
        return (
            float(score) if score is not None else None,
            data.get("vectorString") or "",
            str(data.get("version") or version),
            severity.lower(),
        )
    return None, "", "", ""


def _cwes(weaknesses: Any) -> tuple[str, ...]:
    ordered = sorted(weaknesses, key=lambda w: w.get("type") != "Primary")
    found = [
        d.get("value", "")
        for weakness in ordered
        for d in weakness.get("description") or ()
        if _CWE.match(d.get("value", ""))  # "NVD-CWE-Other" and "NVD-CWE-noinfo" are no CWE
    ]
    return tuple(dict.fromkeys(found))


def _english(descriptions: Any) -> str:
    for description in descriptions:
        if description.get("lang") == "en":
            return description.get("value") or ""
    return descriptions[0].get("value", "") if descriptions else ""


def _timestamp(text: Any) -> datetime | None:
    if not text:
        return None
    parsed = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    # NVD writes UTC without an offset.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
