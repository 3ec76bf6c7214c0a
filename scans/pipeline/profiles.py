"""Reading a scan profile: which scanners, which ports, what time each job gets.

Besides per-scanner options (``{"http": {"paths": [...]}}``), a profile's ``options``
may hold four reserved keys, never passed to a scanner:

- ``"context"``: connect/read timeouts and concurrency for every scanner of the run;
- ``"timeouts"``: seconds per scanner (``{"discovery": 300}``), else ``job_timeout_seconds``;
- ``"max_attempts"``: tries per job before it fails and opens an intervention (default 3);
- ``"udp"``: false leaves the well-known UDP services out of discovery (asked by default).
"""

from __future__ import annotations

from typing import Any

from scans.discovery.discover import discovery_ports
from scans.discovery.registry import default_registry
from scans.models import ScanProfile
from scans.scanners.base import ScanContext

RESERVED_OPTIONS = ("context", "timeouts", "max_attempts", "udp")
DEFAULT_PROFILE = "standard"


class ProfileError(ValueError):
    pass


def profile_resolve(*, org, profile: ScanProfile | str | None = None) -> ScanProfile:
    """The profile named (the organization's own first, then built-in), else the org default, else standard."""
    if isinstance(profile, ScanProfile):
        return profile
    if profile:
        found = (ScanProfile.objects.filter(org=org, slug=profile).first()
                 or ScanProfile.objects.filter(org=None, slug=profile).first())
        if found is None:
            known = sorted(set(ScanProfile.objects.filter(org__in=[org.pk]).values_list("slug", flat=True))
                           | set(ScanProfile.objects.filter(org=None).values_list("slug", flat=True)))
            raise ProfileError(f"unknown scan profile {profile!r}; known: {', '.join(known)}")
        return found
    if org.default_profile_id:
        return org.default_profile
    return ScanProfile.objects.get(org=None, slug=DEFAULT_PROFILE)


def profile_ports(profile: ScanProfile) -> tuple[int, ...]:
    """The ports discovery scans for this profile: its spec read the way discovery reads any spec."""
    return discovery_ports(profile.ports or "top1000", default_registry())


def profile_udp(profile: ScanProfile) -> bool:
    """Whether discovery asks the well-known UDP services (DNS, NTP, SNMP...) of each node."""
    return bool((profile.options or {}).get("udp", True))


def profile_scanner_options(profile: ScanProfile, scanner: str) -> dict[str, Any]:
    return dict((profile.options or {}).get(scanner) or {})


def profile_timeout(profile: ScanProfile, scanner: str) -> float:
    return float(((profile.options or {}).get("timeouts") or {}).get(scanner, profile.job_timeout_seconds))


def profile_max_attempts(profile: ScanProfile) -> int:
    return max(1, int((profile.options or {}).get("max_attempts", 3)))


def profile_context(profile: ScanProfile) -> ScanContext:
    values = dict((profile.options or {}).get("context") or {})
    extra = values.pop("extra", {})
    return ScanContext(**{k: v for k, v in values.items() if k in ("connect_timeout", "read_timeout", "concurrency",
                                                                     "rate_limit")}, extra=dict(extra))
