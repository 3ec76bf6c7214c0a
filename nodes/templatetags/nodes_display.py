"""Template tags for node pages."""

from __future__ import annotations

from urllib.parse import quote

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe

from nodes import display
from nodes.models import Node
from orgs.templatetags.console import grade, reltime

register = template.Library()


@register.filter
def refusal_reason(text):
    return display.refusal_reason(text)


_NOT_REACHABLE = ('<td class="num" colspan="2"><span class="muted" title="Discovery found no open port: '
                  'nothing to score">not reachable</span></td>')
_NONE = '<span class="muted">–</span>'


@register.simple_tag
def node_rows(rows, list_url: str, can_write: bool):
    """The nodes table's body rows (snapshots with their node, from ``node_table_for_org``).

    Built here rather than in the template: fifty rows of fifteen cells are hundreds of
    variable lookups and conditions for the template engine, the slowest part of the page.
    tests/nodes/test_views.py reads the markup.
    A session that succeeded gets no badge in "Last scan" (the time says enough); for a node
    that answered on no port, "succeeded" would read as its health: the State column's "Down"
    and "not reachable" say it.
    """
    list_url = escape(list_url)
    out = []
    for row in rows:
        n = row.node
        pk, address = n.pk, escape(n.address)
        cells = ["<tr data-row>" if n.enabled else '<tr data-row class="is-disabled">']
        if can_write:
            cells.append(f'<td><input type="checkbox" name="node" value="{pk}" aria-label="Select {address}"></td>')
        hostname = f'<div class="muted">{escape(n.hostname)}</div>' if n.hostname and n.hostname != n.address else ""
        # Criticality as a mark on the address (the table has no room for a column at 1280 px): the
        # default, medium, is left unmarked.
        marked = n.criticality != Node.Criticality.MEDIUM
        mark = (f'<span class="visually-hidden"> criticality {escape(n.criticality)}</span>' if marked else "")
        attrs = (f' class="mono crit-mark crit-{escape(n.criticality)}" title="Criticality: {escape(n.criticality)}"'
                 if marked else ' class="mono"')
        # The zone the same way, under the address: only where the organization has zones.
        zone = (f'<div class="muted">zone <a href="{list_url}?zone={n.zone_id}">{escape(n.zone.name)}</a></div>'
                if n.zone_id else "")
        cells.append(f'<td{attrs}><a href="{list_url}{pk}/">{address}</a>{mark}{hostname}{zone}</td>')
        name = escape(n.name)
        cells.append(f'<td class="node-name" title="{name}">{name}</td>' if n.name else '<td class="node-name">–</td>')
        if row.score is None and n.unreached:
            cells.append(_NOT_REACHABLE)
        else:
            cells.append(f'<td class="num">{"–" if row.score is None else row.score}</td><td>{grade(row.grade)}</td>')
        for count in (row.open_total, row.critical, row.high, row.medium, row.low):
            cells.append(f'<td class="num">{count}</td>')
        protocols = "".join(f'<span class="tag">{escape(p)}</span>' for p in n.protocols or ()) or _NONE
        tags = "".join(f'<a class="tag" href="{list_url}?tag={escape(quote(str(t), safe="/"))}">{escape(t)}</a>'
                       for t in n.tags or ()) or _NONE
        cells.append(f'<td class="pills">{protocols}</td><td class="pills">{tags}</td>')
        cells.append(f'<td><span class="status status-{escape(n.state)}">{escape(n.get_state_display())}</span></td>')
        cells.append("<td>yes</td>" if n.enabled else '<td><span class="status status-disabled">disabled</span></td>')
        status = row.last_scan_status
        badge = (f'<span class="status status-{escape(status)}">{escape(status)}</span> '
                 if status and status != "succeeded" else "")
        cells.append(f'<td class="last-scan">{badge}{reltime(row.last_scan_at)}</td>')
        cells.append(f'<td class="num">{row.open_interventions}</td></tr>')
        out.append("".join(cells))
    return mark_safe("\n".join(out))
