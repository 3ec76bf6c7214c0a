"""Display helpers of the finding pages: a CVE match's version range in words, evidence as readable values.

Formatting happens here, at display time: the stored ``match_reason`` keeps the interval notation
that the matcher writes (and its tests read), and evidence stays what the tool sent.
"""

from __future__ import annotations

import json
import re

from django import template
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from scans.findings.candidates import BASES

register = template.Library()


@register.filter
def basis_label(basis: str) -> str:
    """What a confidence rests on, in words (``scans.findings.candidates.BASES``)."""
    return BASES.get(basis, basis or "")

# "[8.6, 9.8)", "(-inf, 1.12.1)", "[2.0, +inf)": scans.cve.cpe.Criterion.interval
_INTERVAL = re.compile(r"(?P<context>\b(?:within|outside) )?(?P<left>[\[(])(?P<start>-inf|[^,\[\]()\s]+), "
                       r"(?P<end>\+inf|[^,\[\]()\s]+)(?P<right>[\])])")


def range_in_words(left: str, start: str, end: str, right: str) -> str:
    """``(-inf, 1.12.1)`` -> "before 1.12.1"; ``[2.0, 2.4)`` -> "from 2.0 up to but not including 2.4"."""
    low = None if start == "-inf" else ("from " if left == "[" else "after ") + start
    if end == "+inf":
        high = None
    elif low is None:
        high = ("up to and including " if right == "]" else "before ") + end
    else:
        high = ("up to and including " if right == "]" else "up to but not including ") + end
    if low and high:
        return f"{low} {high}"
    if low:
        return f"{low} on" if left == "[" else low
    return high or "any version"


@register.filter
def versions_in_words(reason: str) -> str:
    """A match reason with its interval notation said in words."""
    def words(match: re.Match) -> str:
        text = range_in_words(match["left"], match["start"], match["end"], match["right"])
        return f"{match['context']}the affected versions ({text})" if match["context"] else text
    return _INTERVAL.sub(words, reason or "")


# -- evidence ----------------------------------------------------------------------------

LONG_TEXT = 300  # characters shown before "show all"
LONG_LIST = 20  # items shown before "show all"
MAX_DEPTH = 6


def _decoded(value: str):
    """A string holding JSON (a tool's raw answer kept as text) as the value it encodes, else None."""
    text = value.strip()
    if len(text) < 2 or text[0] not in "[{" or text[-1] not in "]}":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _scalar(value) -> SafeString:
    if value is None:
        return mark_safe('<span class="muted">none</span>')
    if isinstance(value, bool):
        return mark_safe("yes" if value else "no")
    if isinstance(value, (int, float)):
        return format_html("{}", value)
    text = str(value)
    if len(text) > LONG_TEXT:
        return format_html('<details class="long-value"><summary><code>{}…</code> <span class="show-all">show all '
                           '({} characters)</span></summary><pre>{}</pre></details>', text[:LONG_TEXT], len(text), text)
    if "\n" in text:
        return format_html("<pre>{}</pre>", text)
    return format_html("<code>{}</code>", text)


def _render(value, depth: int) -> SafeString:
    if isinstance(value, str):
        decoded = _decoded(value)
        if decoded is not None and isinstance(decoded, (dict, list)):
            return _render(decoded, depth)
        return _scalar(value)
    if depth >= MAX_DEPTH and isinstance(value, (dict, list)):
        return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, default=str))
    if isinstance(value, dict):
        if not value:
            return mark_safe('<span class="muted">empty</span>')
        items = format_html_join("", "<dt>{}</dt><dd>{}</dd>",
                                 ((key, _render(item, depth + 1)) for key, item in sorted(value.items(), key=str)))
        return format_html('<dl class="evidence-map">{}</dl>', items)
    if isinstance(value, (list, tuple)):
        if not value:
            return mark_safe('<span class="muted">empty list</span>')
        head = format_html_join("", "<li>{}</li>", ((_render(item, depth + 1),) for item in value[:LONG_LIST]))
        out = format_html('<ol class="evidence-list">{}</ol>', head)
        if len(value) > LONG_LIST:
            rest = format_html_join("", "<li>{}</li>", ((_render(item, depth + 1),) for item in value[LONG_LIST:]))
            out = format_html('{}<details class="long-value"><summary class="show-all">show all {} items</summary>'
                              '<ol class="evidence-list" start="{}">{}</ol></details>', out, len(value), LONG_LIST + 1,
                              rest)
        return out
    return _scalar(value)


@register.filter
def evidence(value) -> SafeString:
    """Evidence as a definition list of its keys: JSON kept as text decoded, nested values indented,
    long values cut with a "show all" <details>."""
    return _render(value, 0)


PRIORITY_TITLES = {1: "P1: fix first", 2: "P2: fix soon", 3: "P3: plan the fix", 4: "P4: when convenient"}


def priority_badge_html(priority: int | None) -> str:
    """The priority badge (P1-P4), the same on every page; a finding without one (not open) shows a dash."""
    if not priority:
        return '<span class="prio prio-none" title="No priority: only open findings have one">–</span>'
    return format_html('<span class="prio prio-{}" title="{}">P{}</span>', priority, PRIORITY_TITLES.get(priority, ""),
                       priority)


@register.simple_tag
def priority_badge(priority):
    return mark_safe(priority_badge_html(priority))


@register.filter
def priority_in_words(reasons) -> str:
    """A finding's reasons as one sentence's tail: "listed by CISA KEV since 2024-05-02, EPSS 97th percentile"."""
    return ", ".join(str(r) for r in reasons or ())


# -- the SLA -------------------------------------------------------------------------------


def _days(seconds: float) -> int:
    return max(0, int(seconds // 86400))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def sla_badge_html(*, status: str, first_seen, due_at, now=None) -> str:
    """An open finding's age, due date and time left ("overdue by N days" past it); nothing otherwise.

    One definition for the findings list's rows (built in Python, ``findings_table``) and the
    finding's page (``{% sla_badge finding %}``)."""
    if status != "open" or first_seen is None:
        return ""
    now = now or timezone.now()
    age = _plural(_days((now - first_seen).total_seconds()), "day")
    if due_at is None:
        return format_html('<span class="sla" title="Open for {}; no due date">age {}</span>', age, age)
    left = (due_at - now).total_seconds()
    day = timezone.localtime(due_at).strftime("%Y-%m-%d")
    if left < 0:
        state, text = "sla-overdue", f"overdue by {_plural(max(1, _days(-left)), 'day')}"
    else:
        remaining = _days(left)
        state = "sla-soon" if left < 3 * 86400 else "sla-ok"
        text = f"{_plural(remaining, 'day')} left" if remaining else "due today"
    return format_html('<span class="sla {}" title="Open for {}; due {}">{}</span> '
                       '<small class="muted sla-due">due <time datetime="{}">{}</time> · age {}</small>',
                       state, age, day, text, due_at.isoformat(), day, age)


@register.simple_tag
def sla_badge(finding) -> SafeString:
    return mark_safe(sla_badge_html(status=finding.status, first_seen=finding.first_seen, due_at=finding.due_at))
