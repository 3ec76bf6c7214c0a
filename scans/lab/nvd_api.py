"""A loopback NVD CVE API 2.0 server: the tests' and the benchmark's NVD.

It answers ``GET <path>?resultsPerPage=&startIndex=[&lastModStartDate=&lastModEndDate=]``
with the API's document (``resultsPerPage``, ``startIndex``, ``totalResults``,
``format``, ``version``, ``timestamp``, ``vulnerabilities``), paging and filtering by
``lastModified`` as NVD does, and refuses what NVD refuses (more than 2,000 records a
page, a lastMod range over 120 days or with one end only) with NVD's 404.

Records come from a *corpus*: :class:`RecordCorpus` serves given ``cve`` objects (tests);
:class:`GeneratedCorpus` makes any number of realistic ones on demand from their index,
holding none in memory (the benchmark's 250,000): CPE criteria over a few thousand
products, version ranges, platform conditions, CVSS, CWEs, references, a few rejected.

Faults on demand, one request each, in order: :meth:`NvdApiServer.fail` (an HTTP status),
:meth:`NvdApiServer.truncate` (a body cut short, with a Content-Length that matches it),
:meth:`NvdApiServer.alter` (the document changed by a function), :meth:`NvdApiServer.flood`
(a body of the given size, no Content-Length). ``requests`` records every query asked.
Only loopback addresses are served.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import orjson

from scans.lab.base import ensure_loopback

MAX_RESULTS_PER_PAGE = 2000
MAX_WINDOW = timedelta(days=120)
FLOOD_CHUNK = 1 << 20


def nvd_timestamp(moment: datetime) -> str:
    """NVD writes UTC without an offset: 2024-07-09T06:15:03.513."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class RecordCorpus:
    """Given ``cve`` objects, in the order given; a window keeps those whose lastModified falls in it."""

    def __init__(self, records: Sequence[dict]) -> None:
        self.records = list(records)

    def select(self, start: datetime | None, end: datetime | None) -> Sequence[int]:
        if start is None:
            return range(len(self.records))
        return [i for i, r in enumerate(self.records) if start <= _parse_time(r["lastModified"]) <= end]

    def record(self, key: int) -> dict:
        return self.records[key]


class GeneratedCorpus:
    """``count`` CVEs made from their index; :meth:`revise` makes some of them modified ``at``.

    Record ``i`` was last modified at ``first + i * step``, so a window's unrevised records
    are an index range found by arithmetic; revised ones are kept as ``{index: (time, n)}``.
    """

    FIRST = datetime(2016, 1, 1, tzinfo=UTC)
    LAST = datetime(2025, 12, 31, tzinfo=UTC)
    PRODUCTS = 3000
    VENDORS = 900

    def __init__(self, count: int, *, seed: int = 1) -> None:
        self.count = count
        self.seed = seed
        self.step = (self.LAST - self.FIRST) / max(1, count)
        self.revised: dict[int, tuple[datetime, int]] = {}

    def revise(self, indices: Sequence[int], *, at: datetime) -> None:
        for index in indices:
            self.revised[index] = (at, self.revised.get(index, (at, 0))[1] + 1)

    def last_modified(self, index: int) -> datetime:
        revised = self.revised.get(index)
        return revised[0] if revised else self.FIRST + self.step * index

    def select(self, start: datetime | None, end: datetime | None) -> Sequence[int]:
        if start is None:
            return range(self.count)
        low = max(0, -(-(start - self.FIRST) // self.step))  # ceiling of a timedelta ratio
        high = min(self.count - 1, (end - self.FIRST) // self.step)
        base = [i for i in range(low, high + 1) if i not in self.revised]
        moved = sorted(i for i, (at, _) in self.revised.items() if start <= at <= end)
        return base + moved

    def record(self, index: int) -> dict:
        return generated_cve(index, last_modified=self.last_modified(index),
                             revision=self.revised.get(index, (None, 0))[1], seed=self.seed)


_WORDS = ("data", "net", "cloud", "secure", "web", "core", "soft", "link", "micro", "open", "sys", "tech", "info",
          "smart", "edge", "stack", "byte", "logic", "grid", "flow")
_KINDS = ("server", "gateway", "manager", "portal", "agent", "firmware", "router", "cms", "library", "client",
          "database", "proxy", "console", "suite", "framework")
_PLATFORMS = (("debian", "debian_linux", "11.0"), ("canonical", "ubuntu_linux", "22.04"),
              ("microsoft", "windows", "-"), ("redhat", "enterprise_linux", "8.0"), ("apple", "macos", "-"))
_CWES = ("CWE-79", "CWE-89", "CWE-787", "CWE-20", "CWE-125", "CWE-22", "CWE-352", "CWE-416", "CWE-78", "CWE-287")


def _vendor(v: int) -> str:
    return f"{_WORDS[v % len(_WORDS)]}{_WORDS[(v // len(_WORDS)) % len(_WORDS)]}_{v}"


def _product(p: int) -> tuple[str, str]:
    vendor = _vendor(p % GeneratedCorpus.VENDORS)
    return vendor, f"{_WORDS[(p * 7) % len(_WORDS)]}_{_KINDS[p % len(_KINDS)]}_{p}"


def _uuid(*parts: object) -> str:
    h = hashlib.md5(":".join(map(str, parts)).encode()).hexdigest().upper()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def generated_cve(index: int, *, last_modified: datetime, revision: int = 0, seed: int = 1) -> dict:
    """One CVE in the API's ``cve`` shape, the same for the same arguments."""
    h = int.from_bytes(hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest(), "big")
    year = 1999 + index * 27 // 250_000 % 27
    cve_id = f"CVE-{year}-{index + 10000}"
    published = min(last_modified, GeneratedCorpus.FIRST + timedelta(days=h % 3000))
    product = h % GeneratedCorpus.PRODUCTS
    vendor_name, product_name = _product(product)
    major, minor = 1 + h % 9, (h >> 8) % 20
    rejected = h % 100 == 0
    score = round(2.0 + (h >> 16) % 80 / 10, 1)
    severity = "CRITICAL" if score >= 9 else "HIGH" if score >= 7 else "MEDIUM" if score >= 4 else "LOW"
    record: dict = {
        "id": cve_id,
        "sourceIdentifier": "cve@mitre.org",
        "published": nvd_timestamp(published),
        "lastModified": nvd_timestamp(last_modified),
        "vulnStatus": "Rejected" if rejected else ("Modified" if revision else "Analyzed"),
        "descriptions": [{"lang": "en", "value": (
            "Rejected reason: this candidate was withdrawn." if rejected else
            f"A flaw in {vendor_name} {product_name} before {major}.{minor + 1}.0 allows a remote attacker to "
            f"cause {('a denial of service', 'code execution', 'information disclosure')[h % 3]} "
            f"via crafted requests (revision {revision}).")}],
        "metrics": {},
        "weaknesses": [],
        "configurations": [],
        "references": [{"url": f"https://{vendor_name}.example/advisories/{cve_id}", "source": "cve@mitre.org"},
                       {"url": f"https://bugs.example/{index}", "source": "cve@mitre.org", "tags": ["Issue Tracking"]}],
    }
    if rejected:
        return record
    record["metrics"] = {"cvssMetricV31": [{"source": "nvd@nist.gov", "type": "Primary", "cvssData": {
        "version": "3.1", "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "baseScore": score,
        "baseSeverity": severity}, "exploitabilityScore": 3.9, "impactScore": 5.9}]}
    record["weaknesses"] = [{"source": "nvd@nist.gov", "type": "Primary",
                             "description": [{"lang": "en", "value": _CWES[h % len(_CWES)]}]}]
    shape = (h >> 24) % 20
    if shape == 0:
        return record  # awaiting analysis: no configurations yet
    prefix = f"cpe:2.3:a:{vendor_name}:{product_name}"

    def ranged(n: int) -> dict:
        lo = f"{major}.{max(0, minor - 2 - n)}.0"
        hi = f"{major}.{minor + 1 - n}.{n}"
        return {"vulnerable": True, "criteria": f"{prefix}:*:*:*:*:*:*:*:*", "versionStartIncluding": lo,
                "versionEndExcluding": hi, "matchCriteriaId": _uuid(index, "r", n)}

    if shape < 12:  # a version range or two
        matches = [ranged(n) for n in range(1 + shape % 2)]
        record["configurations"] = [{"nodes": [{"operator": "OR", "negate": False, "cpeMatch": matches}]}]
    elif shape < 16:  # listed versions
        matches = [{"vulnerable": True, "criteria": f"{prefix}:{major}.{minor}.{patch}:*:*:*:*:*:*:*",
                    "matchCriteriaId": _uuid(index, "v", patch)} for patch in range(1 + shape % 4)]
        record["configurations"] = [{"nodes": [{"operator": "OR", "negate": False, "cpeMatch": matches}]}]
    else:  # vulnerable only on a platform
        vendor, name, version = _PLATFORMS[h % len(_PLATFORMS)]
        record["configurations"] = [{"operator": "AND", "nodes": [
            {"operator": "OR", "negate": False, "cpeMatch": [ranged(0)]},
            {"operator": "OR", "negate": False, "cpeMatch": [
                {"vulnerable": False, "criteria": f"cpe:2.3:o:{vendor}:{name}:{version}:*:*:*:*:*:*:*",
                 "matchCriteriaId": _uuid(vendor, name, version)}]}]}]
    return record


@dataclass
class _Fault:
    status: int = 0
    truncate: bool = False
    alter: Callable[[dict], dict] | None = None
    flood_bytes: int = 0


class NvdApiServer:
    """The API on ``http://address:port/rest/json/cves/2.0``; a context manager that stops it."""

    PATH = "/rest/json/cves/2.0"

    def __init__(self, corpus, *, address: str = "127.0.0.1", port: int = 0,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        ensure_loopback(address)
        self.corpus = corpus
        self.now = now
        self.requests: list[dict[str, str]] = []
        self.api_keys: list[str] = []
        self.faults: deque[_Fault] = deque()
        self.lock = threading.Lock()
        self.httpd = _QuietServer((address, port), _handler_for(self))
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{self.PATH}"

    def start(self) -> NvdApiServer:
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="nvd-api", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> NvdApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail(self, status: int, times: int = 1) -> None:
        self.faults.extend(_Fault(status=status) for _ in range(times))

    def truncate(self) -> None:
        self.faults.append(_Fault(truncate=True))

    def alter(self, change: Callable[[dict], dict]) -> None:
        self.faults.append(_Fault(alter=change))

    def flood(self, size: int) -> None:
        self.faults.append(_Fault(flood_bytes=size))

    def answer(self, query: dict[str, str]) -> tuple[int, bytes, str]:
        """(status, body, NVD's ``message`` header) for one query."""
        try:
            per_page = int(query.get("resultsPerPage", MAX_RESULTS_PER_PAGE))
            start_index = int(query.get("startIndex", 0))
            start = _parse_time(query["lastModStartDate"]) if "lastModStartDate" in query else None
            end = _parse_time(query["lastModEndDate"]) if "lastModEndDate" in query else None
        except (ValueError, KeyError) as error:
            return 404, b"", f"Invalid parameter: {error}"
        if not 1 <= per_page <= MAX_RESULTS_PER_PAGE or start_index < 0:
            return 404, b"", "Invalid resultsPerPage or startIndex"
        if (start is None) != (end is None):
            return 404, b"", "Both lastModStartDate and lastModEndDate are required when either is present"
        if start is not None and not timedelta(0) <= end - start <= MAX_WINDOW:
            return 404, b"", "The lastMod date range cannot exceed 120 consecutive days"
        keys = self.corpus.select(start, end)
        page = keys[start_index:start_index + per_page]
        document = {"resultsPerPage": len(page), "startIndex": start_index, "totalResults": len(keys),
                    "format": "NVD_CVE", "version": "2.0", "timestamp": nvd_timestamp(self.now()),
                    "vulnerabilities": [{"cve": self.corpus.record(k)} for k in page]}
        return 200, orjson.dumps(document), ""


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # A client that hangs up (a refused flood, a port sweep of loopback) is no error of the server's.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler_for(server: NvdApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            with server.lock:
                server.requests.append(query)
                server.api_keys.append(self.headers.get("apiKey", ""))
                fault = server.faults.popleft() if server.faults else None
            if parts.path != server.PATH:
                self._send(404, b"", "Not found")
                return
            if fault and fault.status:
                self._send(fault.status, b"", f"lab fault {fault.status}")
                return
            if fault and fault.flood_bytes:
                self._flood(fault.flood_bytes)
                return
            status, body, message = server.answer(query)
            if fault and fault.alter and status == 200:
                body = orjson.dumps(fault.alter(orjson.loads(body)))
            if fault and fault.truncate:
                body = body[: len(body) * 2 // 3]
            self._send(status, body, message)

        def _send(self, status: int, body: bytes, message: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if message:
                self.send_header("message", message)
            self.end_headers()
            self.wfile.write(body)

        def _flood(self, size: int) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            sent = 0
            try:
                while sent < size:
                    chunk = b" " * min(FLOOD_CHUNK, size - sent)
                    self.wfile.write(chunk)
                    sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client refused the rest, as it should

        def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's signature)
            pass  # tests and the benchmark read ``requests``, not stderr

    return Handler
