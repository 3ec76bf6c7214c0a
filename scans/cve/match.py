"""Which catalog CVEs apply to a service a scanner fingerprinted.

The analysis stage reads each :class:`ServiceObservation` with :func:`observe` (its
product, version and CPE) and asks :meth:`CveIndex.match` which CVEs apply. A fleet runs the same few builds
on thousands of nodes, so :class:`CveIndex` keys entries by NVD ``(vendor, product)``
and remembers its answer per (products, version): the second node running
``OpenSSH 8.9p1`` costs a dictionary lookup.

An observation without a usable version matches nothing: reporting every CVE ever
published for ``nginx`` would bury the findings that are real.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from scans.cve.cpe import Cpe, Observed, Verdict, nvd_products, platforms_suggested_by, try_parse_cpe
from scans.cve.nvd import CveEntry
from scans.cve.versions import Version, distribution_build, parse_version

_CACHE_LIMIT = 50_000


@dataclass(frozen=True, slots=True)
class CveMatch:
    """A catalog CVE that applies to an observed service, with how sure and why."""

    cve_id: str
    confidence: float
    reason: str  # "openssh 8.9p1 is within [8.6, 9.8)"
    cvss_score: float | None
    cvss_vector: str
    severity: str
    cwe: int | None  # the first CWE, as FindingCandidate.cwe wants it
    description: str
    references: tuple[str, ...]
    criteria: str = ""  # the NVD CPE criterion that matched
    basis: str = ""  # what the confidence rests on: one of scans.findings.candidates.BASES


class CveIndex:
    """CVE entries keyed by the NVD ``(vendor, product)`` of their vulnerable criteria.

    Rejected CVEs are left out. Criteria whose vendor or product is a wildcard
    (rare in NVD) are kept aside and tried for every lookup.
    """

    def __init__(self, entries: Iterable[CveEntry] = ()) -> None:
        self._by_product: dict[tuple[str, str], list[CveEntry]] = {}
        self._wildcard: list[CveEntry] = []
        self._ids: set[str] = set()
        self._cache: dict[tuple[tuple[tuple[str, str], ...], str, str, str], tuple[CveMatch, ...]] = {}
        for entry in entries:
            self.add(entry)

    def add(self, entry: CveEntry) -> None:
        if entry.is_rejected or entry.cve_id in self._ids:
            return
        self._ids.add(entry.cve_id)
        self._cache.clear()
        keys: dict[tuple[str, str], None] = {}
        wildcard = False
        for configuration in entry.configurations:
            for criterion in configuration.criteria():
                if not criterion.vulnerable:
                    continue
                key = criterion.criteria.vendor_product
                if key is None:
                    wildcard = True
                else:
                    keys[key] = None
        for key in keys:
            self._by_product.setdefault(key, []).append(entry)
        if wildcard:
            self._wildcard.append(entry)

    def __len__(self) -> int:
        return len(self._ids)

    def products(self) -> list[tuple[str, str]]:
        return sorted(self._by_product)

    def candidates(self, products: Iterable[tuple[str, str]]) -> list[CveEntry]:
        """Entries that may concern any of ``products``, each once."""
        seen: dict[str, CveEntry] = {}
        for key in products:
            for entry in self._by_product.get(key, ()):
                seen.setdefault(entry.cve_id, entry)
        for entry in self._wildcard:
            seen.setdefault(entry.cve_id, entry)
        return list(seen.values())

    def match(self, observed: Observed) -> list[CveMatch]:
        if observed.version is None or not observed.products:
            return []
        key = (observed.products, observed.version.text.lower(), str(observed.cpe or ""), observed.distribution)
        cached = self._cache.get(key)
        if cached is None:
            cached = tuple(_sorted(m for e in self.candidates(observed.products) if (m := match_entry(e, observed))))
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = cached
        return list(cached)


@functools.lru_cache(maxsize=4096)
def observe(product: str, version: str, cpe: str | Cpe = "", banner: str = "") -> Observed:
    """What the matcher knows of a service: NVD names, parsed version, the distribution build its
    version or banner names (``OpenSSH_7.2p2 Ubuntu-4ubuntu2.8``, ``Apache/2.4.29 (Ubuntu)``) and the
    platforms that suggests.

    Remembered per (product, version, CPE), as the index remembers its matches: a fleet's
    thousands of services are a few builds, and parsing their CPE names and versions again
    for every node would be much of the analysis stage's time. ``Observed`` is immutable, so
    one answer can be shared.

    The observation's own ``version`` wins over the CPE's, because it keeps the
    distribution revision (``8.9p1 Ubuntu-3ubuntu0.1``) the CPE usually drops.
    """
    parsed_cpe = try_parse_cpe(cpe) if isinstance(cpe, str) and cpe else (cpe or None)
    parsed: Version | None = parse_version(version) if version else None
    if parsed is None and isinstance(parsed_cpe, Cpe):
        cpe_version = parsed_cpe.literal("version")
        update = parsed_cpe.literal("update") or ""
        if cpe_version:
            parsed = parse_version(cpe_version + update)
    distribution = distribution_build(version, banner)
    return Observed(
        products=nvd_products(product, parsed_cpe),
        version=parsed,
        platforms=platforms_suggested_by(distribution),
        cpe=parsed_cpe if isinstance(parsed_cpe, Cpe) else None,
        distribution=distribution,
    )


def match_entry(entry: CveEntry, observed: Observed) -> CveMatch | None:
    """The best-supported match of ``entry`` over its configurations, or ``None``."""
    best: Verdict | None = None
    for configuration in entry.configurations:
        verdict = configuration.evaluate(observed)
        if verdict.matched and (best is None or verdict.confidence > best.confidence):
            best = verdict
    if best is None:
        return None
    return CveMatch(
        cve_id=entry.cve_id,
        confidence=round(best.confidence, 3),
        reason=best.reason,
        cvss_score=entry.cvss_score,
        cvss_vector=entry.cvss_vector,
        severity=entry.severity,
        cwe=_cwe_number(entry.cwe_ids),
        description=entry.description,
        references=entry.references,
        criteria=best.criteria,
        basis=best.basis,
    )


def _sorted(matches: Iterable[CveMatch]) -> list[CveMatch]:
    return sorted(matches, key=lambda m: (-m.confidence, -(m.cvss_score or 0.0), m.cve_id))


def _cwe_number(cwe_ids: tuple[str, ...]) -> int | None:
    for cwe in cwe_ids:
        found = re.fullmatch(r"CWE-([0-9]+)", cwe)
        if found:
            return int(found.group(1))
    return None
