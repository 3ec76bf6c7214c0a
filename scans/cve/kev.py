"""The CISA Known Exploited Vulnerabilities catalog (its JSON feed), read into :class:`KevListing` rows.

The catalog is small (a few thousand entries, a few megabytes), so it is decoded whole and
checked whole before anything is written: every entry needs a well-formed CVE id and a
``dateAdded``; ``dueDate`` is a date when present; ``knownRansomwareCampaignUse`` is
"Known" or "Unknown". A catalog whose ``count`` disagrees with its entries is truncated
or edited by hand, and is refused like any other malformed file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import IO, Any

import orjson

from scans.cve.feed_reading import FeedFormatError, feed_open

FEED = "KEV"
CVE_ID = re.compile(r"^CVE-[0-9]{4}-[0-9]{4,}$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_RANSOMWARE = {"known": True, "unknown": False}


@dataclass(frozen=True, slots=True)
class KevListing:
    cve_id: str
    vendor: str
    product: str
    name: str
    date_added: date
    due_date: date | None
    required_action: str
    known_ransomware_use: bool
    notes: str


@dataclass(frozen=True, slots=True)
class KevCatalog:
    version: str
    released: datetime | None
    listings: list[KevListing]


def kev_catalog_read(raw: IO[bytes], *, limit: int) -> KevCatalog:
    """The whole catalog from ``raw`` (plain or gzip JSON), or a :class:`FeedFormatError`."""
    content = feed_open(raw, feed=FEED, limit=limit).read()
    try:
        document = orjson.loads(content)
    except orjson.JSONDecodeError as error:
        raise FeedFormatError(FEED, f"not valid JSON ({error})") from None
    if not isinstance(document, dict) or not isinstance(document.get("vulnerabilities"), list):
        raise FeedFormatError(FEED, "not a KEV catalog: no 'vulnerabilities' list at the top level")
    entries = document["vulnerabilities"]
    count = document.get("count")
    if count is not None and count != len(entries):
        raise FeedFormatError(FEED, f"'count' says {count} entries but the catalog holds {len(entries)}; "
                                    "the file is truncated or was edited")
    released = _released(document.get("dateReleased"))
    listings: list[KevListing] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        listing = _listing(index, entry)
        if listing.cve_id in seen:
            raise FeedFormatError(FEED, f"{listing.cve_id} is listed twice (also entry {seen[listing.cve_id]})",
                                  where=f"entry {index}")
        seen[listing.cve_id] = index
        listings.append(listing)
    return KevCatalog(version=str(document.get("catalogVersion") or ""), released=released, listings=listings)


def _listing(index: int, entry: Any) -> KevListing:
    where = f"entry {index}"
    if not isinstance(entry, dict):
        raise FeedFormatError(FEED, "an entry is not an object", where=where)
    cve_id = entry.get("cveID")
    if not isinstance(cve_id, str) or not CVE_ID.match(cve_id):
        raise FeedFormatError(FEED, f"cveID {cve_id!r} is not a CVE id (CVE-YYYY-NNNN)", where=where)
    where = f"entry {index} ({cve_id})"
    added = _date(entry.get("dateAdded"), "dateAdded", where, required=True)
    due = _date(entry.get("dueDate"), "dueDate", where, required=False)
    ransomware = entry.get("knownRansomwareCampaignUse", "Unknown")
    if not isinstance(ransomware, str) or ransomware.strip().lower() not in _RANSOMWARE:
        raise FeedFormatError(FEED, f"knownRansomwareCampaignUse {ransomware!r} is neither 'Known' nor 'Unknown'",
                              where=where)
    return KevListing(
        cve_id=cve_id, vendor=_text(entry.get("vendorProject"))[:200], product=_text(entry.get("product"))[:200],
        name=_text(entry.get("vulnerabilityName"))[:500], date_added=added, due_date=due,
        required_action=_text(entry.get("requiredAction")),
        known_ransomware_use=_RANSOMWARE[ransomware.strip().lower()],
        notes=_text(entry.get("notes")),
    )


def _date(value: Any, field: str, where: str, *, required: bool) -> date | None:
    if value in (None, "") and not required:
        return None
    if not isinstance(value, str):
        raise FeedFormatError(FEED, f"{field} is missing" if value is None else f"{field} {value!r} is not a date",
                              where=where)
    try:
        if not _DATE.match(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise FeedFormatError(FEED, f"{field} {value!r} is not a date (YYYY-MM-DD)", where=where) from None


def _released(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        released = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise FeedFormatError(FEED, f"dateReleased {value!r} is not a date and time") from None
    return released if released.tzinfo else released.replace(tzinfo=UTC)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""
