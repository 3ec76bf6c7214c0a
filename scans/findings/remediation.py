"""Who fixes a finding and where it is tracked: its assignee, its ticket link and its comment thread, on one
finding and in bulk. The console, the API and any command call these; each change is audited.

An assignee is a member of the finding's organization (any role). A ticket link is an http or https
URL (nothing else is ever rendered as a link) and a key such as ``OPS-1234``. A comment is plain text,
at most ``COMMENT_MAX_CHARS`` characters, rendered escaped with its line breaks. Assigning and linking
change the finding (its ``version`` moves on, for optimistic concurrency as in triage); a comment adds
to the thread and leaves the finding's version alone.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from orgs.audit import audit_record, audit_record_many
from orgs.concurrency import check_version
from orgs.models import Membership
from scans.findings.triage import BULK_TRIAGE_BATCH, BULK_TRIAGE_LIMIT, bulk_finding_ids
from scans.models import Finding, FindingComment
from scans.selectors import FindingFilters

COMMENT_MAX_CHARS = 10_000
TICKET_URL_MAX = 2000
TICKET_KEY_MAX = 100
_ticket_url_check = URLValidator(schemes=["http", "https"], message="A ticket link is an http:// or https:// URL.")


def _actor(by):
    return by if by is not None and by.is_authenticated else None


def assignee_check(*, org, assignee):
    """The user to assign (None: unassign), or a ``ValidationError`` when not a member of ``org``.

    ``assignee`` is a user or a user id."""
    if assignee is None or assignee == "":
        return None
    user_id = getattr(assignee, "pk", assignee)
    try:
        user_id = int(user_id)
    except (TypeError, ValueError):
        raise ValidationError(f"{str(assignee)[:40]!r} is not a user id.") from None
    membership = (Membership.objects.filter(org=org, user_id=user_id).select_related("user").first()
                  if 0 < user_id < 2**63 else None)
    if membership is None:
        raise ValidationError("The assignee must be a member of this organization.")
    return membership.user


def ticket_check(*, url: str, key: str) -> tuple[str, str]:
    """The ticket's URL and key, cleaned; a ``ValidationError`` for a URL that is not http(s)."""
    url, key = (url or "").strip(), (key or "").strip()
    if len(url) > TICKET_URL_MAX:
        raise ValidationError(f"A ticket link is at most {TICKET_URL_MAX:,} characters.")
    if len(key) > TICKET_KEY_MAX:
        raise ValidationError(f"A ticket key is at most {TICKET_KEY_MAX} characters.")
    if url:
        _ticket_url_check(url)
    return url, key


def comment_check(body: str) -> str:
    body = (body or "").strip()
    if not body:
        raise ValidationError("A comment needs some text.")
    if len(body) > COMMENT_MAX_CHARS:
        raise ValidationError(f"A comment is at most {COMMENT_MAX_CHARS:,} characters; this one has {len(body):,}.")
    return body


def _user_label(user) -> str | None:
    return user.get_username() if user is not None else None


# -- one finding ---------------------------------------------------------------------------------


def _locked(finding: Finding, expected_version: int | None) -> Finding:
    finding = Finding.objects.select_for_update(of=("self",)).select_related("org").get(pk=finding.pk)
    check_version(finding, expected_version)
    return finding


@transaction.atomic
def finding_assign(*, finding: Finding, assignee, by, token=None, ip: str | None = None,
                   expected_version: int | None = None) -> Finding:
    """Give the finding to a member of its organization (``assignee`` None: to nobody)."""
    user = assignee_check(org=finding.org, assignee=assignee)
    finding = _locked(finding, expected_version)
    before = finding.assignee_id
    if before == (user.pk if user else None):
        return finding
    previous = get_user_model().objects.filter(pk=before).first() if before else None
    finding.assignee = user
    finding.version += 1
    finding.save(update_fields=["assignee", "version"])
    audit_record(org=finding.org, verb="finding.assigned", target=finding, actor=by, token=token, ip=ip,
                 changes={"assignee": [_user_label(previous), _user_label(user)]})
    return finding


@transaction.atomic
def finding_ticket_set(*, finding: Finding, url: str, key: str, by, token=None, ip: str | None = None,
                       expected_version: int | None = None) -> Finding:
    """Link the finding to its ticket elsewhere (both empty: unlink)."""
    url, key = ticket_check(url=url, key=key)
    finding = _locked(finding, expected_version)
    before = (finding.ticket_url, finding.ticket_key)
    if before == (url, key):
        return finding
    finding.ticket_url, finding.ticket_key = url, key
    finding.version += 1
    finding.save(update_fields=["ticket_url", "ticket_key", "version"])
    audit_record(org=finding.org, verb="finding.ticket_linked", target=finding, actor=by, token=token, ip=ip,
                 changes={"ticket_url": [before[0], url], "ticket_key": [before[1], key]})
    return finding


@transaction.atomic
def finding_comment_add(*, finding: Finding, body: str, by, token=None, ip: str | None = None) -> FindingComment:
    """Add a plain-text comment to the finding's thread."""
    body = comment_check(body)
    comment = FindingComment.objects.create(finding=finding, author=_actor(by), body=body)
    audit_record(org=finding.org, verb="finding.commented", target=finding, actor=by, token=token, ip=ip,
                 changes={"comment": comment.pk, "length": len(body)})
    return comment


# -- in bulk -------------------------------------------------------------------------------------


def _bulk_update(*, org, ids: list[int], verb: str, values: dict, before_fields: tuple[str, ...], by, token, ip,
                 describe) -> int:
    """Lock, update and audit ``ids`` in batches: the rows whose ``before_fields`` differ from ``values``."""
    actor = _actor(by)
    changed = 0
    for start in range(0, len(ids), BULK_TRIAGE_BATCH):
        rows = list(Finding.objects.select_for_update().filter(org=org, id__in=ids[start:start + BULK_TRIAGE_BATCH])
                    .values("id", "severity", "title", *before_fields))
        rows = [row for row in rows if any(row[field] != values[field] for field in before_fields)]
        if not rows:
            continue
        Finding.objects.filter(id__in=[row["id"] for row in rows]).update(**values, version=F("version") + 1)
        audit_record_many(org=org, verb=verb, target_type="scans.finding", actor=actor, token=token, ip=ip,
                          targets=[(row["id"], f"[{row['severity']}] {row['title']}", {**describe(row), "bulk": True})
                                   for row in rows])
        changed += len(rows)
    return changed


@transaction.atomic
def findings_assign_bulk(*, org, assignee, by, finding_ids: Iterable[int] | None = None,
                         filters: FindingFilters | None = None, token=None, ip: str | None = None,
                         limit: int = BULK_TRIAGE_LIMIT) -> int:
    """Assign (or unassign) the findings given, or every finding matching ``filters``; one audit event
    per finding changed, a constant number of queries per 1,000. Returns how many changed."""
    user = assignee_check(org=org, assignee=assignee)
    ids = bulk_finding_ids(org=org, finding_ids=finding_ids, filters=filters, limit=limit, verb="change")
    names = dict(get_user_model().objects.filter(memberships__org=org).values_list("pk", "username"))
    new = _user_label(user)
    return _bulk_update(org=org, ids=ids, verb="finding.assigned", values={"assignee_id": user.pk if user else None},
                        before_fields=("assignee_id",), by=by, token=token, ip=ip,
                        describe=lambda row: {"assignee": [names.get(row["assignee_id"]), new]})


@transaction.atomic
def findings_ticket_bulk(*, org, url: str, key: str, by, finding_ids: Iterable[int] | None = None,
                         filters: FindingFilters | None = None, token=None, ip: str | None = None,
                         limit: int = BULK_TRIAGE_LIMIT) -> int:
    """Link the findings given (or matching ``filters``) to one ticket: one ticket for many findings is
    how a team fixes one vulnerability on many nodes."""
    url, key = ticket_check(url=url, key=key)
    ids = bulk_finding_ids(org=org, finding_ids=finding_ids, filters=filters, limit=limit, verb="change")
    return _bulk_update(org=org, ids=ids, verb="finding.ticket_linked", values={"ticket_url": url, "ticket_key": key},
                        before_fields=("ticket_url", "ticket_key"), by=by, token=token, ip=ip,
                        describe=lambda row: {"ticket_url": [row["ticket_url"], url],
                                              "ticket_key": [row["ticket_key"], key]})


@transaction.atomic
def findings_comment_bulk(*, org, body: str, by, finding_ids: Iterable[int] | None = None,
                          filters: FindingFilters | None = None, token=None, ip: str | None = None,
                          limit: int = BULK_TRIAGE_LIMIT) -> int:
    """The same comment on each finding given (or matching ``filters``). Returns how many got it."""
    body = comment_check(body)
    ids = bulk_finding_ids(org=org, finding_ids=finding_ids, filters=filters, limit=limit, verb="change")
    actor = _actor(by)
    now = timezone.now()
    for start in range(0, len(ids), BULK_TRIAGE_BATCH):
        rows = list(Finding.objects.filter(org=org, id__in=ids[start:start + BULK_TRIAGE_BATCH])
                    .values_list("id", "severity", "title"))
        comments = FindingComment.objects.bulk_create([
            FindingComment(finding_id=pk, author=actor, body=body, created_at=now) for pk, _, _ in rows])
        audit_record_many(org=org, verb="finding.commented", target_type="scans.finding", actor=actor, token=token,
                          ip=ip, targets=[(pk, f"[{severity}] {title}",
                                           {"comment": comment.pk, "length": len(body), "bulk": True})
                                          for (pk, severity, title), comment in zip(rows, comments)])
    return len(ids)

