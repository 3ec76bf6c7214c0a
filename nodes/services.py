"""Writes about nodes: create, edit, enable/disable, bulk add.

Every address a person or token declares passes the scope guard (``orgs.scope``) before it
becomes a node: the organization's scope and the deployment's ``SCAN_ALLOWED_NETWORKS``.
A refusal is a ``ValidationError`` carrying the guard's reason. Only names are resolved
(once, through the guard); checking an address never sends a packet to it.
"""

from __future__ import annotations

import csv
import io
import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from config.entries import split_entries
from nodes.models import Node, NodeSnapshot
from orgs import budgets
from nodes.placement import nodes_place, nodes_place_new
from orgs.audit import audit_record, audit_record_many
from orgs.events import NODE_CRITICALITY_CHANGED, event_publish
from orgs.scope import CheckedTarget, ScopeError, canonical_target, resolve_and_check, valid_hostname

Resolver = Callable[[str], Iterable[str]]

MAX_TAGS = 20
MAX_TAG_LENGTH = 40
BULK_MAX_ROWS = 10_000
BULK_MAX_BYTES = 1_000_000


# --- checking an address ---------------------------------------------------------------------


def node_address_check(*, org, address: str, resolver: Resolver | None = None) -> CheckedTarget:
    """The guard's verdict on ``address`` for ``org``; ``ValidationError`` with its reason when refused."""
    try:
        return resolve_and_check(address, scope=[*org.scope_networks, *org.scope_hostnames],
                                 allowed_networks=settings.SCAN_ALLOWED_NETWORKS, resolver=resolver)
    except ScopeError as exc:
        raise ValidationError(str(exc), code="scope") from None


def _canonical(checked: CheckedTarget) -> str:
    # The same spelling session_start and imports give a target, so one node per target whichever
    # path created it: the checked name, else the checked address (127.1 was checked as 127.0.0.1).
    return canonical_target(checked.hostname or checked.address)


def clean_tags(tags) -> list[str]:
    """Tags as a list: from a list or a "a, b; c" string, trimmed, unique, bounded."""
    cleaned = split_entries(tags, separators=",;")
    for tag in cleaned:
        if len(tag) > MAX_TAG_LENGTH:
            raise ValidationError(f"The tag {tag[:20]!r}… is longer than {MAX_TAG_LENGTH} characters.", code="tags")
    if len(cleaned) > MAX_TAGS:
        raise ValidationError(f"A node takes at most {MAX_TAGS} tags.", code="tags")
    return cleaned


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if len(name) > Node._meta.get_field("name").max_length:
        raise ValidationError("The name is longer than 200 characters.", code="name")
    return name


def clean_criticality(value) -> str:
    """A criticality as stored (low, medium, high, critical), any case; ``ValidationError`` naming the choices."""
    cleaned = str(value or "").strip().lower()
    if cleaned not in Node.Criticality.values:
        raise ValidationError(f"{str(value)[:20]!r} is not a criticality: use {', '.join(Node.Criticality.values)}.",
                              code="criticality")
    return cleaned


def _criticality_changed(*, org, node_ids: list[int]) -> None:
    # The findings' priority (scans, a layer above) depends on it: told in this transaction, so a
    # criticality and the priorities computed from it commit together.
    if node_ids:
        event_publish(NODE_CRITICALITY_CHANGED, org=org, node_ids=node_ids)


def _duplicate(org, address: str, *, exclude_pk=None) -> None:
    existing = Node.objects.filter(org=org, address=address)
    if exclude_pk is not None:
        existing = existing.exclude(pk=exclude_pk)
    if existing.exists():
        raise ValidationError(f"{address} is already a node of this organization.", code="duplicate")


def literal_ip(address: str) -> str | None:
    """The address itself when it is an IP address (a node's resolved IP before any lookup), else None."""
    try:
        return str(ipaddress.ip_address(address.strip()))
    except ValueError:
        return None


# --- a node comes to exist -------------------------------------------------------------------


def nodes_create(*, org, nodes: Sequence[Node], skip_existing: bool = False, batch_size: int = 1000) -> None:
    """Insert new nodes of ``org``, each with its snapshot: the one way a node comes to exist.

    Lists and dashboards read a node through its snapshot, so the two rows are written together.
    Afterwards every object carries the id of the node at its address. A duplicate address raises
    ``IntegrityError`` and writes nothing, unless ``skip_existing``: then a node already at that
    address (one someone else added meanwhile included) is left as it is and its id is given.
    """
    if not nodes:
        return
    with transaction.atomic():
        Node.objects.bulk_create(nodes, batch_size=batch_size, ignore_conflicts=skip_existing)
        if skip_existing:  # an ignored conflict returns no id: read them by address
            addresses = [node.address for node in nodes]
            ids: dict[str, int] = {}
            for start in range(0, len(addresses), batch_size):
                ids.update(Node.objects.filter(org=org, address__in=addresses[start:start + batch_size])
                           .values_list("address", "pk"))
            for node in nodes:
                node.pk = ids[node.address]
        NodeSnapshot.objects.bulk_create([NodeSnapshot(node_id=node.pk, org=org) for node in nodes],
                                         batch_size=batch_size, ignore_conflicts=skip_existing)
        nodes_place_new(org=org, node_ids=[node.pk for node in nodes])


# --- one node ---------------------------------------------------------------------------------


def node_address_validate(*, org, address: str, exclude_pk=None, resolver: Resolver | None = None) -> CheckedTarget:
    """May ``address`` become (or replace ``exclude_pk``'s) node address? The checked target, or ValidationError."""
    checked = node_address_check(org=org, address=address, resolver=resolver)
    _duplicate(org, _canonical(checked), exclude_pk=exclude_pk)
    return checked


def node_create(*, org, address: str, name: str = "", tags=None, criticality: str = Node.Criticality.MEDIUM,
                by=None, token=None, ip: str | None = None, resolver: Resolver | None = None) -> Node:
    """Add a node after the scope guard accepts its address; a duplicate address is refused."""
    checked = node_address_validate(org=org, address=address, resolver=resolver)
    canonical = _canonical(checked)
    name, tags, criticality = _clean_name(name), clean_tags(tags), clean_criticality(criticality)
    try:
        with transaction.atomic():
            node = Node(org=org, address=canonical, name=name, tags=tags, hostname=checked.hostname,
                        resolved_ip=checked.address, criticality=criticality)
            nodes_create(org=org, nodes=[node])
            audit_record(org=org, verb="node.created", target=node, actor=by, token=token, ip=ip,
                         changes={"address": canonical, "name": name, "tags": tags, "criticality": criticality})
    except IntegrityError:
        # Someone added the same address between the check and the insert.
        raise ValidationError(f"{canonical} is already a node of this organization.", code="duplicate") from None
    return node


def node_update(*, node: Node, by=None, token=None, ip: str | None = None, address: str | None = None,
                name: str | None = None, hostname: str | None = None, tags=None, criticality: str | None = None,
                resolver: Resolver | None = None) -> Node:
    """Change what a person may change on a node; a new address passes the guard again.

    ``None`` leaves a field as it is. ``hostname`` is the name sent for SNI and Host on an
    IP node; it is never resolved or connected to, only checked for syntax.
    """
    changes: dict[str, list] = {}
    fields: dict[str, object] = {}
    if address is not None and canonical_target(address) != node.address:
        checked = node_address_check(org=node.org, address=address, resolver=resolver)
        canonical = _canonical(checked)
        if canonical != node.address:
            _duplicate(node.org, canonical, exclude_pk=node.pk)
            fields.update(address=canonical, resolved_ip=checked.address)
            if checked.hostname:
                fields["hostname"] = checked.hostname
    if name is not None:
        fields["name"] = _clean_name(name)
    if hostname is not None and "hostname" not in fields:
        hostname = hostname.strip().lower().rstrip(".")
        if hostname and not valid_hostname(hostname):
            raise ValidationError(f"{hostname!r} is not a valid host name.", code="hostname")
        fields["hostname"] = hostname
    if tags is not None:
        fields["tags"] = clean_tags(tags)
    if criticality is not None:
        fields["criticality"] = clean_criticality(criticality)
    for key, value in fields.items():
        if getattr(node, key) != value:
            changes[key] = [getattr(node, key), value]
            setattr(node, key, value)
    if not changes:
        return node
    try:
        with transaction.atomic():
            node.save(update_fields=[*changes, "updated_at"])
            audit_record(org=node.org, verb="node.updated", target=node, actor=by, token=token, ip=ip,
                         changes=changes)
            if "criticality" in changes:
                _criticality_changed(org=node.org, node_ids=[node.pk])
            if "address" in changes or "hostname" in changes:
                nodes_place(org=node.org, node_ids=[node.pk])
                node.refresh_from_db(fields=["zone", "zone_pinned"])
    except IntegrityError:
        node.refresh_from_db()
        raise ValidationError(f"{fields.get('address')} is already a node of this organization.",
                              code="duplicate") from None
    return node


def node_set_enabled(*, node: Node, enabled: bool, by=None, token=None, ip: str | None = None) -> Node:
    """Enable or disable a node: a disabled node is left out of sessions. Idempotent."""
    with transaction.atomic():
        changed = Node.objects.filter(pk=node.pk).exclude(enabled=enabled).update(enabled=enabled)
        node.enabled = enabled
        if changed:
            audit_record(org=node.org, verb="node.enabled" if enabled else "node.disabled", target=node, actor=by,
                         token=token, ip=ip, changes={"enabled": [not enabled, enabled]})
    return node


def node_set_budgets(*, node: Node, new_per_second, at_once, by=None, token=None, ip: str | None = None) -> Node:
    """Set what the node tolerates: new connections per second and connections at once (None: no limit).

    Every scanner and discovery keep to them from the next job on (``scans.scanners.connections``).
    A value of 0, or above the bounds of ``orgs.budgets``, is refused and nothing changes.
    """
    new_per_second, at_once = budgets.new_per_second_clean(new_per_second), budgets.at_once_clean(at_once)
    with transaction.atomic():
        before = Node.objects.select_for_update().filter(pk=node.pk).values_list(
            "max_new_connections_per_second", "max_connections_at_once").get()
        node.max_new_connections_per_second, node.max_connections_at_once = new_per_second, at_once
        if before != (new_per_second, at_once):
            Node.objects.filter(pk=node.pk).update(max_new_connections_per_second=new_per_second,
                                                   max_connections_at_once=at_once)
            audit_record(org=node.org, verb="node.budgets_changed", target=node, actor=by, token=token, ip=ip,
                         changes={"max_new_connections_per_second": [before[0], new_per_second],
                                  "max_connections_at_once": [before[1], at_once]})
    return node


def nodes_set_criticality(*, org, node_ids: Iterable[int], criticality: str, by=None, token=None,
                          ip: str | None = None) -> int:
    """Set the criticality of many nodes of ``org`` at once (ids of other organizations name nothing).

    One UPDATE of the nodes that differ, one audit event per node changed; their findings'
    priority follows in the same transaction. Returns how many nodes changed.
    """
    criticality = clean_criticality(criticality)
    ids = sorted({int(pk) for pk in node_ids if 0 < int(pk) < 2**63})
    if len(ids) > BULK_MAX_ROWS:
        raise ValidationError(f"{len(ids):,} nodes selected; set at most {BULK_MAX_ROWS:,} at once.", code="too_many")
    with transaction.atomic():
        rows = list(Node.objects.select_for_update().filter(org=org, pk__in=ids).exclude(criticality=criticality)
                    .values_list("pk", "address", "name", "criticality"))
        if not rows:
            return 0
        changed = [row[0] for row in rows]
        Node.objects.filter(pk__in=changed).update(criticality=criticality)
        audit_record_many(org=org, verb="node.updated", target_type="nodes.node", actor=by, token=token, ip=ip,
                          targets=[(pk, name or address, {"criticality": [before, criticality], "bulk": True})
                                   for pk, address, name, before in rows])
        _criticality_changed(org=org, node_ids=changed)
    return len(rows)


def node_get_or_create(*, org, address: str) -> Node:
    """The node at ``address``, created (with its snapshot) when new. Safe under concurrency.

    For the pipeline, which has checked the address against the scope itself.
    """
    address = canonical_target(address)
    node = Node.objects.filter(org=org, address=address).first()
    if node is None:
        node = Node(org=org, address=address, resolved_ip=literal_ip(address))
        nodes_create(org=org, nodes=[node], skip_existing=True)
    return node


# --- many nodes -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeRow:
    """One row a person asked to add: where it came from (line) and what it says."""

    line: int
    address: str
    name: str = ""
    tags: tuple[str, ...] = ()
    criticality: str = Node.Criticality.MEDIUM


@dataclass(slots=True)
class BulkOutcome:
    line: int
    address: str
    outcome: str  # "added" | "duplicate" | "refused"
    reason: str = ""
    node_id: int | None = None


@dataclass(slots=True)
class BulkReport:
    rows: list[BulkOutcome] = field(default_factory=list)

    def _count(self, outcome: str) -> int:
        return sum(1 for r in self.rows if r.outcome == outcome)

    @property
    def added(self) -> int:
        return self._count("added")

    @property
    def duplicates(self) -> int:
        return self._count("duplicate")

    @property
    def refused(self) -> int:
        return self._count("refused")


def _line_error(line: int, message: str) -> ValidationError:
    return ValidationError(f"Line {line}: {message}", code="malformed")


def _decode(data: bytes | str, *, max_bytes: int) -> str:
    if isinstance(data, str):
        if len(data.encode("utf-8", "surrogatepass")) > max_bytes:
            raise ValidationError(f"The list is larger than {max_bytes:,} bytes; split it.", code="too_big")
        text = data
    else:
        if len(data) > max_bytes:
            raise ValidationError(f"The file is larger than {max_bytes:,} bytes; split it.", code="too_big")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise _line_error(line, "not UTF-8 text; save the file as UTF-8.") from None
    if "\x00" in text:
        raise _line_error(text[: text.index("\x00")].count("\n") + 1, "contains a NUL character; is it a binary file?")
    return text


def _check_field(line: int, value: str, what: str, limit: int) -> str:
    value = value.strip()
    if len(value) > limit:
        raise _line_error(line, f"the {what} is longer than {limit} characters.")
    if any(ch in value for ch in "\r\n\t") or any(ord(ch) < 32 for ch in value):
        raise _line_error(line, f"the {what} contains control characters.")
    return value


def _row(line: int, address: str, name: str = "", tags: str = "", criticality: str = "") -> NodeRow:
    address = _check_field(line, address, "address", 255)
    if not address:
        raise _line_error(line, "the address is empty.")
    name = _check_field(line, name, "name", 200)
    try:
        tag_list = clean_tags(_check_field(line, tags, "tags", 1000).split(";"))
    except ValidationError as exc:
        raise _line_error(line, exc.messages[0]) from None
    criticality = _check_field(line, criticality, "criticality", 20) or Node.Criticality.MEDIUM
    try:
        criticality = clean_criticality(criticality)
    except ValidationError as exc:
        raise _line_error(line, f"the criticality {exc.messages[0]}") from None
    return NodeRow(line=line, address=address, name=name, tags=tuple(tag_list), criticality=criticality)


def _bounded(rows: list[NodeRow], max_rows: int) -> list[NodeRow]:
    if not rows:
        raise ValidationError("The list holds no address.", code="empty")
    if len(rows) > max_rows:
        raise ValidationError(f"The list holds {len(rows):,} rows, more than the limit of {max_rows:,}; split it.",
                              code="too_many")
    return rows


def parse_node_paste(text: str, *, max_rows: int = BULK_MAX_ROWS, max_bytes: int = BULK_MAX_BYTES) -> list[NodeRow]:
    """A pasted list: one address per line, optionally followed by a name (``127.0.0.5 web-1``).

    Blank lines and lines starting with ``#`` are skipped. Raises ``ValidationError`` naming
    the first bad line; nothing is returned for a list with any bad line.
    """
    text = _decode(text, max_bytes=max_bytes)
    rows: list[NodeRow] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        address, *rest = line.split(None, 1)
        rows.append(_row(number, address, rest[0] if rest else ""))
        if len(rows) > max_rows:
            break
    return _bounded(rows, max_rows)


CSV_COLUMNS = ("address", "name", "tags", "criticality")


def parse_node_csv(data: bytes | str, *, max_rows: int = BULK_MAX_ROWS,
                   max_bytes: int = BULK_MAX_BYTES) -> list[NodeRow]:
    """A CSV file: ``address[,name][,tags separated by ;][,criticality]``, with an optional header row.

    Raises ``ValidationError`` naming the line for a malformed file (not UTF-8, too big,
    too many rows, a row with more than four columns, bad quoting, a bad header, a criticality
    other than low, medium, high or critical).
    """
    text = _decode(data, max_bytes=max_bytes)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[NodeRow] = []
    columns: tuple[str, ...] = CSV_COLUMNS
    first = True
    try:
        for record in reader:
            number = reader.line_num
            if not record or all(not cell.strip() for cell in record):
                continue
            if first:
                first = False
                header = tuple(cell.strip().lower() for cell in record)
                if set(header) & set(CSV_COLUMNS):  # a header row: it names the columns, in any order
                    known = set(header) <= set(CSV_COLUMNS)
                    if "address" not in header or len(set(header)) != len(header) or not known:
                        raise _line_error(number, f"the header names the columns {', '.join(header)}; expected "
                                                  f"address and optionally name, tags and criticality, each once.")
                    columns = header
                    continue
            if record[0].lstrip().startswith("#"):
                continue
            if len(record) > len(columns):
                raise _line_error(number, f"{len(record)} columns where at most {len(columns)} are expected "
                                          f"({', '.join(columns)}).")
            values = dict(zip(columns, record, strict=False))
            rows.append(_row(number, values.get("address", ""), values.get("name", ""), values.get("tags", ""),
                             values.get("criticality", "")))
            if len(rows) > max_rows:
                break
    except csv.Error as exc:
        raise _line_error(reader.line_num or 1, f"not valid CSV ({exc}).") from None
    return _bounded(rows, max_rows)


def nodes_bulk_add(*, org, rows: list[NodeRow] | None = None, text: str | None = None,
                   csv_file: bytes | str | None = None, by=None, token=None, ip: str | None = None,
                   resolver: Resolver | None = None) -> BulkReport:
    """Add many nodes at once and say, row by row, what became of each.

    Give exactly one of ``rows`` (already parsed), ``text`` (a pasted list) or ``csv_file``.
    A malformed list raises ``ValidationError`` before anything is written (nothing partial);
    a well-formed one adds every acceptable row, skips duplicates (already a node, or an
    earlier row of the same list) and reports every refusal with the guard's reason.
    """
    if sum(x is not None for x in (rows, text, csv_file)) != 1:
        raise ValueError("give exactly one of rows, text or csv_file")
    if text is not None:
        rows = parse_node_paste(text)
    elif csv_file is not None:
        rows = parse_node_csv(csv_file)
    rows = _bounded(list(rows or ()), BULK_MAX_ROWS)

    report = BulkReport()
    accepted: list[tuple[BulkOutcome, NodeRow, CheckedTarget]] = []
    for row in rows:
        try:
            checked = node_address_check(org=org, address=row.address, resolver=resolver)
        except ValidationError as exc:
            report.rows.append(BulkOutcome(row.line, row.address, "refused", exc.messages[0]))
            continue
        outcome = BulkOutcome(row.line, _canonical(checked), "added")
        report.rows.append(outcome)
        accepted.append((outcome, row, checked))

    with transaction.atomic():
        wanted = [outcome.address for outcome, _, _ in accepted]
        existing = dict(Node.objects.filter(org=org, address__in=wanted).values_list("address", "pk"))
        seen: dict[str, int] = {}
        new: list[tuple[BulkOutcome, Node]] = []
        for outcome, row, checked in accepted:
            if outcome.address in existing:
                outcome.outcome, outcome.node_id = "duplicate", existing[outcome.address]
                outcome.reason = "already a node of this organization"
            elif outcome.address in seen:
                outcome.outcome = "duplicate"
                outcome.reason = f"the same address as line {seen[outcome.address]}"
            else:
                seen[outcome.address] = row.line
                new.append((outcome, Node(org=org, address=outcome.address, name=row.name, tags=list(row.tags),
                                          criticality=row.criticality, hostname=checked.hostname,
                                          resolved_ip=checked.address)))
        if new:
            try:
                nodes_create(org=org, nodes=[node for _, node in new])
            except IntegrityError:
                raise ValidationError("Some of these addresses were added by someone else meanwhile; "
                                      "nothing was added. Submit the list again.", code="conflict") from None
            for outcome, node in new:
                outcome.node_id = node.pk
        audit_record(org=org, verb="node.bulk_added", actor=by, token=token, ip=ip,
                     changes={"added": [o.address for o, _ in new], "duplicates": report.duplicates,
                              "refused": report.refused, "rows": len(rows)})
    return report


def node_delete(*, node: Node, by=None, token=None, ip: str | None = None) -> None:
    """Delete a node with everything that hangs off it (findings, jobs, snapshot, score history).

    Audited first, with the address, so the trail says what was deleted after the row is gone.
    """
    with transaction.atomic():
        audit_record(org=node.org, verb="node.deleted", target=node, actor=by, token=token, ip=ip,
                     changes={"address": node.address, "name": node.name})
        Node.objects.filter(pk=node.pk).delete()


# --- nodes stored before addresses were canonical ---------------------------------------------


@dataclass(frozen=True, slots=True)
class AddressCollision:
    """Nodes of one organization whose addresses are spellings of one target (127.1, 2130706433)."""

    org_id: int
    address: str  # the canonical spelling, held by ``kept``
    kept: int
    others: tuple[tuple[int, str], ...]  # (id, address as stored): left as they are for a person to merge


def node_addresses_canonical_plan(rows: Iterable[tuple[int, int, str]]) -> tuple[list[tuple[int, str]],
                                                                                  list[AddressCollision]]:
    """From (id, org id, address) rows: the renames to canonical spellings, and the collisions.

    Nothing is merged: two nodes of one address each hold their own findings, jobs and history,
    and which to keep is a person's call. Of such a group, the node already spelled canonically
    keeps its address (else the oldest takes the canonical spelling, so a new add of any
    spelling finds it); the others keep the spelling they were stored under and are reported.
    """
    groups: dict[tuple[int, str], list[tuple[int, str]]] = {}
    for pk, org_id, address in rows:
        groups.setdefault((org_id, canonical_target(address)), []).append((pk, address))
    renames: list[tuple[int, str]] = []
    collisions: list[AddressCollision] = []
    for (org_id, canonical), members in sorted(groups.items()):
        members.sort()
        kept = next((m for m in members if m[1] == canonical), members[0])
        if kept[1] != canonical:
            renames.append((kept[0], canonical))
        others = tuple(m for m in members if m is not kept)
        if others:
            collisions.append(AddressCollision(org_id=org_id, address=canonical, kept=kept[0], others=others))
    return renames, collisions
