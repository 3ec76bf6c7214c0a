"""What the KEV and EPSS readers share: their error, and opening a feed file plain or gzip.

A feed file is told gzip from plain by its magic bytes, never by its name (the EPSS file
is ``.csv.gz``, a KEV file saved by hand may be either). Decompression is capped: a file
that inflates past the cap is refused as it is read, so a gzip bomb costs a bounded read.
"""

from __future__ import annotations

import gzip
import io
import zlib
from typing import IO

GZIP_MAGIC = b"\x1f\x8b"


class FeedFormatError(ValueError):
    """A feed file that cannot be taken: names the feed, where (line or entry) and what was wrong."""

    def __init__(self, feed: str, message: str, *, where: str = "") -> None:
        self.feed = feed
        self.where = where
        self.reason = message
        super().__init__(f"{feed} feed{', ' + where if where else ''}: {message}")


class CappedReader(io.RawIOBase):
    """Reads through ``inner`` and refuses to give more than ``limit`` bytes in all."""

    def __init__(self, inner: IO[bytes], *, limit: int, feed: str) -> None:
        self.inner = inner
        self.limit = limit
        self.feed = feed
        self.read_so_far = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self.inner.read(len(buffer))
        except (EOFError, gzip.BadGzipFile, zlib.error) as error:
            # gzip reports a truncated or corrupt stream mid-read, after the bytes before it were handed out.
            raise FeedFormatError(self.feed, f"the gzip stream is broken after {self.read_so_far:,} bytes "
                                             f"({error}); the file is truncated or corrupt") from None
        self.read_so_far += len(data)
        if self.read_so_far > self.limit:
            raise FeedFormatError(self.feed, f"the file is larger than the limit of {self.limit:,} bytes "
                                             "(WATCHPOST_FEED_MAX_BYTES)")
        buffer[:len(data)] = data
        return len(data)


def feed_open(raw: IO[bytes], *, feed: str, limit: int) -> IO[bytes]:
    """A binary stream of the feed's content, decompressed when ``raw`` is gzip, capped at ``limit`` bytes."""
    buffered = raw if hasattr(raw, "peek") else io.BufferedReader(raw)
    inner: IO[bytes] = gzip.GzipFile(fileobj=buffered, mode="rb") if buffered.peek(2)[:2] == GZIP_MAGIC else buffered
    return io.BufferedReader(CappedReader(inner, limit=limit, feed=feed), buffer_size=1 << 20)
