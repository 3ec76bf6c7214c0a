"""FIRST's EPSS daily scores (the gzip CSV), read as a stream ready for COPY.

The file is the whole day's snapshot, a quarter of a million rows::

    #model_version:v2025.03.14,score_date:2026-12-06T00:00:00+0000
    cve,epss,percentile
    CVE-1999-0001,0.01141,0.77888

Rows are checked one by one as they stream (a CVE id, two numbers between 0 and 1, no CVE
twice) and handed on as COPY text in blocks, so the whole file is never held as objects.
An error names the line, counted from 1 in the decompressed text; the caller's transaction
undoes whatever was already copied.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO

from scans.cve.feed_reading import FeedFormatError, feed_open

FEED = "EPSS"
HEADER = "cve,epss,percentile"
BLOCK_ROWS = 20_000
_NUMBER = r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
_ROW = re.compile(rf"(CVE-[0-9]{{4}}-[0-9]{{4,}}),{_NUMBER},{_NUMBER}\r?\n?\Z")
_CVE_ID = re.compile(r"CVE-[0-9]{4}-[0-9]{4,}\Z")


@dataclass(frozen=True, slots=True)
class EpssModel:
    version: str
    score_date: datetime


class EpssScores:
    """An EPSS file being read: its model (from the comment line), then its rows as COPY text blocks.

    ``rows`` counts the rows handed out so far; it is the file's count once the blocks are exhausted.
    """

    def __init__(self, raw: IO[bytes], *, limit: int) -> None:
        self.text = io.TextIOWrapper(feed_open(raw, feed=FEED, limit=limit), encoding="utf-8", newline="")
        self.line = 0
        self.rows = 0
        self.model = self._model()

    def _next_line(self) -> str:
        try:
            line = self.text.readline()
        except UnicodeDecodeError as error:
            raise FeedFormatError(FEED, f"not UTF-8 text ({error.reason})", where=f"line {self.line + 1}") from None
        self.line += 1
        return line

    def _model(self) -> EpssModel:
        first = self._next_line()
        if not first.startswith("#"):
            raise FeedFormatError(FEED, f"expected the comment '#model_version:...,score_date:...', found "
                                        f"{first.strip()[:80]!r}; the model date is unknown", where="line 1")
        fields = dict(part.split(":", 1) for part in first[1:].strip().split(",") if ":" in part)
        try:
            score_date = datetime.fromisoformat(fields["score_date"].strip())
        except (KeyError, ValueError):
            raise FeedFormatError(FEED, f"no readable score_date in {first.strip()[:120]!r}", where="line 1") from None
        header = self._next_line().strip()
        if header.replace(" ", "") != HEADER:
            raise FeedFormatError(FEED, f"the header is {header[:80]!r}, expected {HEADER!r}", where="line 2")
        return EpssModel(version=fields.get("model_version", "").strip(),
                         score_date=score_date if score_date.tzinfo else score_date.replace(tzinfo=UTC))

    def copy_blocks(self) -> Iterator[str]:
        """Tab-separated ``cve_id, score, percentile`` lines, ``BLOCK_ROWS`` at a time."""
        seen: set[str] = set()
        block: list[str] = []
        match = _ROW.match
        while line := self._next_line():
            found = match(line)
            if found is None:
                if not line.strip():
                    continue  # a blank line (the file's last newline doubled) carries nothing
                raise self._row_error(line)
            cve_id, score, percentile = found.groups()
            if not (0.0 <= float(score) <= 1.0 and 0.0 <= float(percentile) <= 1.0):
                raise FeedFormatError(FEED, f"{cve_id}: epss {score} and percentile {percentile} must lie "
                                            "between 0 and 1", where=f"line {self.line}")
            if cve_id in seen:
                raise FeedFormatError(FEED, f"{cve_id} is scored twice", where=f"line {self.line}")
            seen.add(cve_id)
            block.append(f"{cve_id}\t{score}\t{percentile}\n")
            if len(block) == BLOCK_ROWS:
                self.rows += len(block)
                yield "".join(block)
                block = []
        if block:
            self.rows += len(block)
            yield "".join(block)
        if not self.rows:
            raise FeedFormatError(FEED, "the file has a header but no scores", where=f"line {self.line}")

    def _row_error(self, line: str) -> FeedFormatError:
        where = f"line {self.line}"
        fields = line.rstrip("\r\n").split(",")
        if len(fields) != 3:
            return FeedFormatError(FEED, f"expected 3 fields (cve,epss,percentile), found {len(fields)}: "
                                         f"{line.strip()[:80]!r}", where=where)
        if not _CVE_ID.match(fields[0]):
            return FeedFormatError(FEED, f"{fields[0][:40]!r} is not a CVE id (CVE-YYYY-NNNN)", where=where)
        return FeedFormatError(FEED, f"{fields[0]}: epss {fields[1][:20]!r} or percentile {fields[2][:20]!r} "
                                     "is not a number", where=where)
