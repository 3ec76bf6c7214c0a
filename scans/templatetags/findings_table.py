"""The findings list's rows, built in Python.

Fifty rows through ``{% include %}`` are, for the template engine, an include, a localize block
and some 200 variable lookups per row: the slowest part of the page. The list and the
single row an htmx triage answers with (``scans/partials/finding_row.html``) both come from
``finding_row_html``, so the row has one definition. Numbers are written as ``{% localize off %}``
wrote them.
"""

from __future__ import annotations

from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.formats import localize
from django.utils.html import escape
from django.utils.safestring import mark_safe

from orgs.templatetags.console import reltime, severity
from scans.templatetags.findings import priority_badge_html, sla_badge_html

register = template.Library()

APOSTROPHE = "'"  # as the template wrote it, unescaped
TRIAGE_FORM = "scans/partials/finding_row_triage.html"
STALE = ('<p class="error" role="alert">Changed meanwhile by someone else: this is its current state. '
         'Try again if still needed.</p>')


NO_DUE_DATE = '<span class="muted">–</span>'


def _text(value, default: str = "–") -> str:
    return default if value is None else escape(localize(value, use_l10n=False))


def finding_row_html(row: dict, *, findings_url: str, can_write: bool, stale=None, row_form=None,
                     triage_form: str = "") -> str:
    """One ``<tr>`` of the findings table from a ``scans.fields.FINDING_ROW`` row (plus ``status_label``).

    ``stale`` and ``row_form`` are the outcome of a triage posted from the row; ``triage_form``
    is the row's triage form already rendered (when ``row_form`` is set)."""
    fid = _text(row["id"])
    url = escape(findings_url)
    out = [f'<tr data-row id="finding-{fid}">']
    if can_write:
        out.append(f'<td class="col-check"><input type="checkbox" name="finding" value="{fid}" form="bulk-form" '
                   f'aria-label="Select finding {fid}"></td>')
    rule_id = row["rule_id"]
    cves = "".join(f" · {escape(cve)}" for cve in (row["cve_ids"] or [])[:3] if cve != rule_id)
    # A potential finding's severity is what it would be if real: the badge beside it says it is not sure.
    potential = (' <span class="certainty certainty-potential" title="Below the certainty threshold, not confirmed: '
                 f'{escape(_confidence(row))} confidence">Potential</span>') if row.get("potential") else ""
    out.append(f'<td class="col-prio">{priority_badge_html(row["priority"])}</td>'
               f'<td class="col-sev">{severity(row["severity"])}{potential}</td>'
               f'<td class="finding-title"><a href="{url}{fid}/">{escape(row["title"][:120])}</a>\n'
               f'    <small class="muted">{escape(row["source"])} · {escape(rule_id[:60])}{cves}</small></td>')
    out.append(f'<td class="node" data-label="Node"><a href="{url}?node={_text(row["node"])}" '
               f'title="This node{APOSTROPHE}s findings">{escape(row["node_name"] or row["node_address"])}</a></td>')
    out.append(f'<td class="col-port">{_text(row["port"])}</td><td class="num col-cvss">{_text(row["cvss_score"])}</td>')
    until = row["risk_accepted_until"]
    until = f' <small class="muted">until {date_format(timezone.localtime(until), "Y-m-d")}</small>' if until else ""
    errors = ""
    if row_form is not None and row_form.errors:
        errors = '<div class="error" role="alert">' + "".join(
            " ".join(escape(e) for e in field_errors) + " " for field_errors in row_form.errors.values()) + "</div>"
    out.append(f'<td class="col-status"><span class="status status-{escape(row["status"])}">'
               f'{escape(row["status_label"])}</span>{_facet(row)}{until}{STALE if stale else ""}{errors}</td>')
    # The SLA of an open finding (age, due date, time left) in the Due column.
    sla = sla_badge_html(status=row["status"], first_seen=row["first_seen"], due_at=row["due_at"])
    out.append(f'<td class="col-due" data-label="Due">{sla or NO_DUE_DATE}</td>')
    out.append(f'<td class="col-first">{reltime(row["first_seen"])}</td><td class="col-last">{reltime(row["last_seen"])}</td>')
    if can_write:
        if row_form is not None:
            out.append(f'<td class="row-triage">{triage_form}</td>')
        else:
            out.append(f'<td class="row-triage"><a href="{url}{fid}/#triage" hx-get="{url}{fid}/triage/" '
                       f'hx-target="closest td" hx-swap="innerHTML">Triage</a></td>')
    out.append("</tr>")
    return "".join(out)


def _facet(row: dict) -> str:
    """Which open findings are news: reopened by a rescan, or new (reported by one session or import so far,
    so first seen by the last scan of its node and source)."""
    if row["status"] != "open":
        return ""
    if row.get("reopened_count"):
        return ' <span class="facet facet-reopened" title="Fixed once, found again">reopened</span>'
    if row.get("times_seen") == 1:
        return ' <span class="facet facet-new" title="Reported by one session or import so far">new</span>'
    return ""


def _confidence(row: dict) -> str:
    confidence = row.get("match_confidence")
    return "no stated" if confidence is None else f"{confidence:.0%}"


@register.simple_tag
def finding_rows(rows, findings_url: str, can_write: bool):
    """The list's rows (no triage outcome on any of them)."""
    return mark_safe("\n".join(finding_row_html(row, findings_url=findings_url, can_write=can_write) for row in rows))


@register.simple_tag(takes_context=True)
def finding_row(context, row):
    """The one row a triage posted from the list answers with: its outcome (``stale``, ``row_form``) shown in it."""
    row_form = context.get("row_form")
    triage_form = ""
    if row_form is not None and context["membership"].can_write:
        triage_form = context.template.engine.get_template(TRIAGE_FORM).render(context)
    return mark_safe(finding_row_html(row, findings_url=context["findings_url"],
                                      can_write=context["membership"].can_write, stale=context.get("stale"),
                                      row_form=row_form, triage_form=triage_form))
