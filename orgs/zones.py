"""Zones: the parts of an organization's networks that workers of their own scan.

Every write about a zone (create, update, delete) is here, audited; so is the one rule of
which zone holds an address (:class:`ZonePlacer`: the most specific network wins, then a
host name) and the check a zone worker makes at its start (:func:`zone_for_worker`).

Nodes live above this app: when zones change, :data:`ZONES_CHANGED` tells the nodes app,
which re-places the organization's nodes in the same transaction.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from config.entries import split_entries
from orgs.audit import audit_record
from orgs.events import ZONES_CHANGED, event_publish
from orgs.models import Organization, Zone
from orgs.scope import IPNetwork, ScopeError, parse_scope, valid_hostname

NAME_MAX = 100
# A zone is a handful of networks, not an inventory: the console and the placement read them all.
NETWORKS_MAX = 256
HOSTNAMES_MAX = 256


# --- which zone holds an address -------------------------------------------------------------


def ip_or_none(value: str | None):
    """The IP address ``value`` spells, or None (a host name, nothing)."""
    try:
        return ipaddress.ip_address((value or "").strip())
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _ZoneShape:
    pk: int
    networks: tuple[IPNetwork, ...]
    names: frozenset[str]
    wildcards: tuple[str, ...]


def _shape(zone: Zone) -> _ZoneShape:
    scope = parse_scope(zone.hostnames or [])
    networks = tuple(ipaddress.ip_network(n, strict=False) for n in zone.networks or [])
    return _ZoneShape(zone.pk, networks, scope.hostnames, scope.wildcards)


class ZonePlacer:
    """Which of an organization's zones holds a node: the zone of the most specific network holding
    its address; else the zone naming its host name (an exact name before the longest wildcard);
    else none, the organization's default zone."""

    def __init__(self, zones: Iterable[Zone]) -> None:
        self.zones = {zone.pk: _shape(zone) for zone in zones}
        self._networks = sorted(((net, shape.pk) for shape in self.zones.values() for net in shape.networks),
                                key=lambda item: -item[0].prefixlen)

    def place(self, *, address: str | None, hostname: str = "") -> int | None:
        ip = ip_or_none(address)
        if ip is not None:
            for network, pk in self._networks:
                if ip.version == network.version and ip in network:
                    return pk
        name = (hostname or "").lower().rstrip(".")
        if not name:
            return None
        for shape in self.zones.values():
            if name in shape.names:
                return shape.pk
        best: tuple[int, int] | None = None
        for shape in self.zones.values():
            for suffix in shape.wildcards:
                if name.endswith("." + suffix) and (best is None or len(suffix) > best[0]):
                    best = (len(suffix), shape.pk)
        return best[1] if best else None

    def holds(self, zone_id: int, *, address: str | None, hostname: str = "") -> bool:
        """May the zone's workers scan this node (its address in one of the zone's networks, or its
        name one of the zone's names)? What a pin must satisfy and what a zone worker checks."""
        shape = self.zones.get(zone_id)
        if shape is None:
            return False
        ip = ip_or_none(address)
        if ip is not None and any(ip.version == n.version and ip in n for n in shape.networks):
            return True
        name = (hostname or "").lower().rstrip(".")
        return bool(name) and (name in shape.names or any(name.endswith("." + w) for w in shape.wildcards))


def zone_holds(zone: Zone, *, address: str | None, hostname: str = "") -> bool:
    return ZonePlacer([zone]).holds(zone.pk, address=address, hostname=hostname)


# --- validation ------------------------------------------------------------------------------


def zone_networks_clean(*, org: Organization, networks) -> list[str]:
    """The zone's networks in their canonical spelling, each inside one of the organization's networks."""
    entries = split_entries(networks, separators=",\n")
    if len(entries) > NETWORKS_MAX:
        raise ValidationError(f"A zone has at most {NETWORKS_MAX} networks.", code="networks")
    scope_networks = []
    for entry in org.scope_networks or []:
        try:
            scope_networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue  # a host name in the networks list is the scope's business, not the zone's
    cleaned: list[str] = []
    for entry in entries:
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValidationError(f"{entry!r} is not a network (expected a CIDR such as 10.1.0.0/16).",
                                  code="networks") from None
        if not any(network.version == s.version and network.subnet_of(s) for s in scope_networks):
            scope = ", ".join(map(str, scope_networks)) or "none"
            raise ValidationError(f"{network} is outside the organization's scope (its networks: {scope}).",
                                  code="networks")
        if str(network) not in cleaned:
            cleaned.append(str(network))
    return cleaned


def zone_hostnames_clean(*, org: Organization, hostnames) -> list[str]:
    """Names or ``*.`` wildcards, each inside the organization's declared names."""
    entries = [entry.lower().rstrip(".") for entry in split_entries(hostnames, separators=",\n")]
    if len(entries) > HOSTNAMES_MAX:
        raise ValidationError(f"A zone has at most {HOSTNAMES_MAX} host names.", code="hostnames")
    try:
        scope = parse_scope(org.scope_hostnames or [])
    except ScopeError:
        scope = parse_scope([])
    cleaned: list[str] = []
    for entry in entries:
        wildcard = entry.startswith("*.")
        name = entry[2:] if wildcard else entry
        if not valid_hostname(name) or "*" in name:
            raise ValidationError(f"{entry!r} is not a host name or a wildcard such as *.branch.example.",
                                  code="hostnames")
        inside = (any(name == w or name.endswith("." + w) for w in scope.wildcards) if wildcard
                  else scope.contains_hostname(name))
        if not inside:
            raise ValidationError(f"{entry} is outside the organization's declared host names "
                                  f"({', '.join(org.scope_hostnames or []) or 'none'}).", code="hostnames")
        if entry not in cleaned:
            cleaned.append(entry)
    return cleaned


def _name_clean(name) -> str:
    name = " ".join(str(name or "").split())
    if not name:
        raise ValidationError("A zone needs a name.", code="name")
    if len(name) > NAME_MAX:
        raise ValidationError(f"A zone's name has at most {NAME_MAX} characters.", code="name")
    return name


def zone_overlaps_refuse(*, org: Organization, networks: list[str], hostnames: list[str], exclude_pk=None) -> None:
    """Two zones of equal specificity for the same address cannot both hold it: the same network (or
    host name) in two zones is refused. A network inside another zone's larger one is allowed: the
    more specific wins."""
    others = Zone.objects.filter(org=org).exclude(pk=exclude_pk).only("name", "networks", "hostnames")
    mine_nets = {str(ipaddress.ip_network(n, strict=False)) for n in networks}
    for other in others:
        theirs = {str(ipaddress.ip_network(n, strict=False)) for n in other.networks or []}
        same = sorted(mine_nets & theirs)
        if same:
            raise ValidationError(f"{same[0]} is already a network of zone {other.name!r}: an address must have "
                                  "one most specific zone.", code="overlap")
        same_names = sorted(set(hostnames) & set(other.hostnames or []))
        if same_names:
            raise ValidationError(f"{same_names[0]} is already a host name of zone {other.name!r}.", code="overlap")


def zone_for_worker(value: str | None) -> Zone:
    """The zone a worker started with ``WATCHPOST_ZONE=value`` serves; ``ValueError`` saying why not."""
    text = (value or "").strip()
    if not text.isdigit():
        raise ValueError(f"WATCHPOST_ZONE={value!r} is not a zone id (a number, as the zone's page shows).")
    zone = Zone.objects.select_related("org").filter(pk=int(text)).first()
    if zone is None:
        raise ValueError(f"WATCHPOST_ZONE={text} names no zone: it was deleted, or this worker reads another "
                         "database.")
    return zone


# --- writes ----------------------------------------------------------------------------------


def _changed(org: Organization, *, removed: tuple[int, ...] = ()) -> None:
    event_publish(ZONES_CHANGED, org=org, removed=removed)


def zone_create(*, org: Organization, name: str, networks=None, hostnames=None, by=None, token=None,
                ip: str | None = None) -> Zone:
    name = _name_clean(name)
    networks = zone_networks_clean(org=org, networks=networks)
    hostnames = zone_hostnames_clean(org=org, hostnames=hostnames)
    if not networks and not hostnames:
        raise ValidationError("A zone needs at least one network or host name.", code="networks")
    try:
        with transaction.atomic():
            Organization.objects.select_for_update().filter(pk=org.pk).first()  # one zone writer per organization
            zone_overlaps_refuse(org=org, networks=networks, hostnames=hostnames)
            zone = Zone.objects.create(org=org, name=name, networks=networks, hostnames=hostnames)
            audit_record(org=org, verb="zone.created", target=zone, actor=getattr(by, "user", by), token=token,
                         ip=ip, changes={"name": name, "networks": networks, "hostnames": hostnames})
            _changed(org)
    except IntegrityError:
        raise ValidationError(f"The organization already has a zone named {name!r}.", code="name") from None
    return zone


def zone_update(*, zone: Zone, name: str | None = None, networks=None, hostnames=None, by=None, token=None,
                ip: str | None = None) -> Zone:
    org = zone.org
    values = {
        "name": _name_clean(name) if name is not None else zone.name,
        "networks": zone_networks_clean(org=org, networks=networks) if networks is not None else zone.networks,
        "hostnames": zone_hostnames_clean(org=org, hostnames=hostnames) if hostnames is not None else zone.hostnames,
    }
    if not values["networks"] and not values["hostnames"]:
        raise ValidationError("A zone needs at least one network or host name.", code="networks")
    changes = {key: [getattr(zone, key), value] for key, value in values.items() if getattr(zone, key) != value}
    if not changes:
        return zone
    try:
        with transaction.atomic():
            Organization.objects.select_for_update().filter(pk=org.pk).first()
            zone_overlaps_refuse(org=org, networks=values["networks"], hostnames=values["hostnames"], exclude_pk=zone.pk)
            for key in changes:
                setattr(zone, key, values[key])
            zone.save(update_fields=list(changes))
            audit_record(org=org, verb="zone.updated", target=zone, actor=getattr(by, "user", by), token=token,
                         ip=ip, changes=changes)
            if "networks" in changes or "hostnames" in changes:
                _changed(org)
    except IntegrityError:
        zone.refresh_from_db()
        raise ValidationError(f"The organization already has a zone named {values['name']!r}.", code="name") from None
    return zone


@transaction.atomic
def zone_delete(*, zone: Zone, by=None, token=None, ip: str | None = None) -> None:
    """Its nodes go back to the zones that still hold them, or to the default zone, before it goes."""
    org = zone.org
    Organization.objects.select_for_update().filter(pk=org.pk).first()
    _changed(org, removed=(zone.pk,))
    audit_record(org=org, verb="zone.deleted", target=zone, actor=getattr(by, "user", by), token=token, ip=ip,
                 changes={"name": zone.name, "networks": zone.networks, "hostnames": zone.hostnames})
    zone.delete()
