"""The scope guard: may this target be scanned, and at which address exactly?

Two boundaries, both required (DESIGN.md, "Tenancy and safety"):

- the organization's declared scope: CIDRs, host names and wildcards
  (``*.lab.internal`` covers every name below ``lab.internal``, not the apex);
- the deployment's ``SCAN_ALLOWED_NETWORKS`` (loopback only by default).

A name is resolved exactly once; *every* address it resolves to must pass both
boundaries, and the caller gets back the checked IP literal. A declared name vouches
for its addresses only when the organization declares no networks: once it does, the
addresses a name resolves to must lie inside those networks too, so one tenant cannot
reach another tenant's range by declaring a name that points there.

IPv6 forms that carry an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible
``::a.b.c.d``, NAT64 ``64:ff9b::/96`` and ``64:ff9b:1::/48``, 6to4 ``2002::/16``) are judged
as, and connected to, the IPv4 address they reach. Zone ids (``fe80::1%eth0``) are refused
on a literal: the zone picks an interface, which no scope entry can vouch for. Scanners connect to that
literal only and never resolve again, so a DNS answer that changes between the check
and the connection (rebinding) cannot move a scan somewhere else.

Pure Python on plain values, no Django: the pipeline passes ``org.scope_networks +
org.scope_hostnames`` and ``settings.SCAN_ALLOWED_NETWORKS``.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from config.entries import split_entries

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_ALLOWED_NETWORKS = "127.0.0.0/8,::1/128"

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))


class ScopeError(ValueError):
    """A target refused by the guard. ``boundary`` says which rule refused it."""

    def __init__(self, message: str, *, target: str = "", address: str = "", boundary: str = "") -> None:
        super().__init__(message)
        self.target = target
        self.address = address
        self.boundary = boundary  # "syntax" | "resolution" | "address kind" | "allowed networks" | "organization scope"


@dataclass(frozen=True, slots=True)
class CheckedTarget:
    """A target that passed the guard. Connect to ``address``; ``hostname`` is for SNI/Host only."""

    address: str
    hostname: str = ""
    addresses: tuple[str, ...] = ()  # everything the name resolved to, all checked

    @property
    def label(self) -> str:
        return self.hostname or self.address


@dataclass(frozen=True, slots=True)
class Scope:
    networks: tuple[IPNetwork, ...] = ()
    hostnames: frozenset[str] = frozenset()
    wildcards: tuple[str, ...] = ()  # suffixes without the "*.", e.g. "lab.internal"
    unbounded: bool = False  # no organization boundary (operator tools); allowed networks still apply

    def contains_address(self, address: IPAddress) -> bool:
        return self.unbounded or any(address in network for network in self.networks)

    def contains_hostname(self, hostname: str) -> bool:
        name = hostname.lower().rstrip(".")
        return self.unbounded or name in self.hostnames or any(name.endswith("." + w) for w in self.wildcards)

    def describe(self) -> str:
        if self.unbounded:
            return "unbounded"
        parts = [str(n) for n in self.networks] + sorted(self.hostnames) + [f"*.{w}" for w in self.wildcards]
        return ", ".join(parts) or "empty"


@dataclass(slots=True)
class _Parsed:
    networks: list[IPNetwork] = field(default_factory=list)
    hostnames: set[str] = field(default_factory=set)
    wildcards: list[str] = field(default_factory=list)


_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def _normalize(address: IPAddress) -> IPAddress:
    """The address a packet really reaches: IPv6 forms that embed an IPv4 address become it.

    ::ffff:10.0.0.1 (mapped), ::10.0.0.1 (compatible), 64:ff9b::a00:1 (NAT64) and
    2002:a00:1:: (6to4) all reach 10.0.0.1, so they are judged (and connected to) as 10.0.0.1.
    """
    if not isinstance(address, ipaddress.IPv6Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in network for network in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    value = int(address)
    if 1 < value < 2**32:  # IPv4-compatible (deprecated, still routed by some stacks); :: and ::1 excluded
        return ipaddress.IPv4Address(value)
    return address


# A name whose last label is a number is an IPv4 address in one of inet_aton's legacy spellings
# (127.1, 2130706433, 0x7f000001, 0177.0.0.1): what getaddrinfo, browsers (the URL standard's
# "ends in a number") and every C library connect to. No DNS name ends in a number.
_NUMERIC_LABEL = re.compile(r"^(?:[0-9]+|0x[0-9a-f]*)$")


def _legacy_ipv4(text: str) -> ipaddress.IPv4Address | None | bool:
    """The address an IPv4 spelling reaches; None for a name; False for a number inet_aton refuses."""
    labels = text.lower().split(".")
    if labels and labels[-1] == "" and len(labels) > 1:
        labels.pop()  # one trailing dot, as in a fully qualified name
    if not labels or not _NUMERIC_LABEL.match(labels[-1]):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(".".join(labels)))
    except (OSError, UnicodeError, ValueError):
        return False


def canonical_target(target: str) -> str:
    """The one spelling of a target that nodes are stored and matched under.

    An IP address in its standard form, as it is reached (``127.000.010.205`` is inet_aton's
    octal 127.0.8.205; ``0x7f000001``, ``2130706433`` and ``127.1`` are 127.0.0.1; IPv6 forms
    that carry an IPv4 address are that address); a host name lower-cased without its
    trailing dot. Pure text: nothing is resolved. Anything else is spelled like a name, for the
    guard (:func:`resolve_and_check`) to refuse with its reason.
    """
    raw = (target or "").strip()
    literal = raw[1:-1] if raw.startswith("[") and raw.endswith("]") else raw
    try:
        return str(_normalize(ipaddress.ip_address(literal)))
    except ValueError:
        pass
    legacy = _legacy_ipv4(literal)
    return str(legacy) if legacy else literal.lower().rstrip(".")


def valid_hostname(name: str) -> bool:
    name = name.rstrip(".")
    return 0 < len(name) <= 253 and all(_LABEL.match(label) for label in name.lower().split("."))


def parse_networks(value: str | Iterable[str] | None) -> tuple[IPNetwork, ...]:
    """CIDRs from "a,b" or a list; a bare address is its own /32 or /128."""
    networks = []
    for entry in split_entries(value, separators=",\n"):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ScopeError(f"{entry!r} is not a network (expected a CIDR such as 127.0.0.0/8)",
                             target=entry, boundary="syntax") from None
    return tuple(networks)


def parse_scope(entries: str | Iterable[str] | None) -> Scope:
    """An organization scope from CIDRs, addresses, host names and ``*.`` wildcards."""
    parsed = _Parsed()
    for entry in split_entries(entries, separators=",\n"):
        try:
            parsed.networks.append(ipaddress.ip_network(entry, strict=False))
            continue
        except ValueError:
            pass
        name = entry.lower().rstrip(".")
        if name.startswith("*."):
            if not valid_hostname(name[2:]) or "*" in name[2:]:
                raise ScopeError(f"{entry!r} is not a valid wildcard (expected *.example.internal)",
                                 target=entry, boundary="syntax")
            parsed.wildcards.append(name[2:])
        elif valid_hostname(name):
            parsed.hostnames.add(name)
        else:
            raise ScopeError(f"{entry!r} is neither a CIDR nor a host name", target=entry, boundary="syntax")
    return Scope(tuple(parsed.networks), frozenset(parsed.hostnames), tuple(parsed.wildcards))


UNBOUNDED = Scope(unbounded=True)


def _as_scope(scope: Scope | str | Iterable[str] | None) -> Scope:
    if isinstance(scope, Scope):
        return scope
    if scope is None:
        raise ScopeError("no organization scope given (pass orgs.scope.UNBOUNDED to check the deployment "
                         "boundary only)", boundary="organization scope")
    return _parsed_scope(scope if isinstance(scope, str) else tuple(scope))


# Parsed once per distinct list, not once per target: a session checks every node of one
# organization against the same scope and allowed networks (a thousand parses at fan-out, one
# per job at run time). Both results are immutable; a list that fails to parse is not cached.
@functools.lru_cache(maxsize=256)
def _parsed_scope(entries: str | tuple[str, ...]) -> Scope:
    return parse_scope(entries)


def _as_networks(allowed: str | Iterable[str] | Iterable[IPNetwork]) -> tuple[IPNetwork, ...]:
    items = list(allowed.replace("\n", ",").split(",")) if isinstance(allowed, str) else list(allowed)
    if items and all(isinstance(i, (ipaddress.IPv4Network, ipaddress.IPv6Network)) for i in items):
        return tuple(items)
    return _parsed_networks(tuple(str(i) for i in items))


@functools.lru_cache(maxsize=64)
def _parsed_networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return parse_networks(entries)


def check_address(
    address: IPAddress | str,
    *,
    scope: Scope | str | Iterable[str] | None,
    allowed_networks: str | Iterable[str] = DEFAULT_ALLOWED_NETWORKS,
    target: str = "",
    hostname: str = "",
) -> str:
    """Check one address against both boundaries; return the IP literal to connect to."""
    scope = _as_scope(scope)
    allowed = _as_networks(allowed_networks)
    ip = _normalize(ipaddress.ip_address(address) if isinstance(address, str) else address)
    literal = str(ip)
    target = target or literal
    via = f"{target!r} (address {literal})" if target != literal else f"{literal}"

    if ip.is_unspecified or ip.is_multicast or (ip.version == 4 and ip == ipaddress.IPv4Address("255.255.255.255")):
        raise ScopeError(f"refused {via}: unspecified, multicast and broadcast addresses are never scanned",
                         target=target, address=literal, boundary="address kind")
    if not any(ip in network for network in allowed):
        raise ScopeError(
            f"refused {via}: outside the deployment's allowed networks "
            f"(SCAN_ALLOWED_NETWORKS = {', '.join(map(str, allowed)) or 'none'})",
            target=target, address=literal, boundary="allowed networks",
        )
    # Link-local holds cloud metadata endpoints (169.254.169.254): a broad allow-list such as
    # 0.0.0.0/0 must not open it; only a network inside link-local itself does.
    if any(ip in ll for ll in _LINK_LOCAL) and not any(
        ip in n and any(n.version == ll.version and n.subnet_of(ll) for ll in _LINK_LOCAL) for n in allowed
    ):
        raise ScopeError(f"refused {via}: link-local addresses must be allowed explicitly in SCAN_ALLOWED_NETWORKS",
                         target=target, address=literal, boundary="allowed networks")
    # A declared name vouches for its addresses only where the organization declares no networks.
    name_vouches = bool(hostname) and scope.contains_hostname(hostname) and (scope.unbounded or not scope.networks)
    if not (scope.contains_address(ip) or name_vouches):
        raise ScopeError(
            f"refused {via}: outside the organization's scope ({scope.describe()})",
            target=target, address=literal, boundary="organization scope",
        )
    return literal


def resolve_and_check(
    target: str,
    *,
    scope: Scope | str | Iterable[str] | None,
    allowed_networks: str | Iterable[str] = DEFAULT_ALLOWED_NETWORKS,
    resolver: Callable[[str], Iterable[str]] | None = None,
) -> CheckedTarget:
    """Resolve ``target`` once and check every address; refuse with :class:`ScopeError`.

    An address is in the organization's scope when it lies in one of its networks, or
    when the target is a name the scope declares (then the name vouches for its
    addresses, which must still lie in the allowed networks). ``resolver`` replaces
    ``getaddrinfo`` (a name -> addresses function; it raises OSError when the name
    does not resolve), for callers with their own resolution and for tests.
    """
    raw = (target or "").strip()
    literal = raw[1:-1] if raw.startswith("[") and raw.endswith("]") else raw
    if not literal:
        raise ScopeError("empty target", boundary="syntax")
    scope = _as_scope(scope)
    allowed = _as_networks(allowed_networks)
    try:
        ip = ipaddress.ip_address(literal)
    except ValueError:
        ip = None
    if ip is None:
        legacy = _legacy_ipv4(literal)
        if legacy is False:
            raise ScopeError(f"refused {raw!r}: not an IP address, and a host name cannot end in a number",
                             target=raw, boundary="syntax")
        ip = legacy
    if ip is not None and getattr(ip, "scope_id", None):
        raise ScopeError(f"refused {raw!r}: IPv6 zone ids (%interface) are not accepted; give the address alone",
                         target=raw, boundary="syntax")
    if ip is not None:
        address = check_address(ip, scope=scope, allowed_networks=allowed, target=raw)
        return CheckedTarget(address=address, addresses=(address,))

    hostname = literal.lower().rstrip(".")
    if not valid_hostname(hostname):
        raise ScopeError(f"refused {raw!r}: not an IP address or a valid host name (no ports, URLs or paths)",
                         target=raw, boundary="syntax")
    try:
        answers = list((resolver or _getaddrinfo)(hostname))
    except (OSError, UnicodeError) as exc:
        raise ScopeError(f"refused {raw!r}: it does not resolve ({exc})", target=raw, boundary="resolution") from None
    resolved: list[str] = []
    for answer in answers:
        try:
            # Drop an IPv6 zone ("fe80::1%eth0"); the address itself is what is judged.
            text = str(_normalize(ipaddress.ip_address(str(answer).split("%", 1)[0])))
        except ValueError:
            raise ScopeError(f"refused {raw!r}: the resolver answered {answer!r}, not an address",
                             target=raw, boundary="resolution") from None
        if text not in resolved:
            resolved.append(text)
    if not resolved:
        raise ScopeError(f"refused {raw!r}: it resolves to no address", target=raw, boundary="resolution")
    checked = [check_address(a, scope=scope, allowed_networks=allowed, target=hostname, hostname=hostname)
               for a in resolved]
    return CheckedTarget(address=checked[0], hostname=hostname, addresses=tuple(checked))


def _getaddrinfo(hostname: str) -> list[str]:
    return [sockaddr[0] for *_, sockaddr in socket.getaddrinfo(hostname, None, type=socket.SOCK_STREAM)]
