"""What each kind of channel is sent, made from the one stored event (``WebhookDelivery.payload``).

A delivery stores the event as signed webhooks receive it (``{"id", "type", "created_at", "org",
"data"}``); the other kinds are rendered from it at each attempt, which is deterministic, so a retry
sends the same bytes:

- ``slack``: an incoming-webhook message, ``{"text": ..., "blocks": [...]}`` (Block Kit), ``text``
  being the notification's fallback;
- ``teams``: a Teams workflow ("When a Teams webhook request is received") message carrying one
  Adaptive Card: ``{"type": "message", "attachments": [{"contentType":
  "application/vnd.microsoft.card.adaptive", "content": {...}}]}``;
- ``email``: a subject and a plain-text body.

Only signed webhooks are signed: Slack and Teams authenticate the sender by the secret URL itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from reports.models import WebhookEndpoint

Kind = WebhookEndpoint.Kind
Event = WebhookEndpoint.Event

ITEMS_SHOWN = 10  # findings listed in a chat message or an e-mail; the rest are counted
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
SIGNED_KINDS = frozenset({Kind.WEBHOOK})
HTTP_KINDS = frozenset({Kind.WEBHOOK, Kind.SLACK, Kind.TEAMS})


def absolute_url(path: str) -> str:
    if not path or path.startswith(("http://", "https://")):
        return path
    base = getattr(settings, "WATCHPOST_BASE_URL", "") or "http://localhost:8000"
    return base.rstrip("/") + path


@dataclass
class Message:
    """An event in words, the same for every kind that renders it."""

    title: str
    summary: str = ""
    facts: list[tuple[str, str]] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    more: int = 0  # items not listed
    link: str = ""
    link_label: str = "Open in Watchpost"


def finding_line(finding: dict[str, Any]) -> str:
    priority = f" P{finding['priority']}" if finding.get("priority") else ""
    where = (finding.get("node") or {}).get("address", "")
    if finding.get("port"):
        where += f":{finding['port']}"
    extra = []
    if finding.get("due_at"):
        extra.append(f"due {finding['due_at'][:10]}")
    if finding.get("assignee"):
        extra.append(f"assigned to {finding['assignee']}")
    tail = f" ({', '.join(extra)})" if extra else ""
    return f"[{(finding.get('severity') or '').upper()}{priority}] {finding.get('title', '')} on {where}{tail}"


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


FINDING_TITLES = {
    Event.FINDING_NEW: lambda n, d: f"{_plural(n, 'new finding')} (from {d.get('min_severity', 'low')})",
    Event.FINDING_CRITICAL: lambda n, d: f"{_plural(n, 'new P1 or critical finding')}",
    Event.FINDING_REOPENED: lambda n, d: f"{_plural(n, 'finding')} reopened",
    Event.SLA_BREACHED: lambda n, d: f"{_plural(n, 'finding')} past the SLA due date",
    Event.RISK_ACCEPTANCE_EXPIRED: lambda n, d: f"Accepted risk expired on {_plural(n, 'finding')}",
}


def message_for(payload: dict[str, Any]) -> Message:
    event = payload.get("type", "")
    data = payload.get("data") or {}
    org = (payload.get("org") or {}).get("name", "")
    if "session" in data:
        s = data["session"]
        # The reason says why in words when it did not simply succeed (the error is a traceback's first line).
        why = s.get("reason") or s.get("error") or ""
        findings = s.get("findings") or {}
        jobs = s.get("jobs") or {}
        facts = [("Organization", org), ("Trigger", s.get("trigger") or ""), ("Nodes", str(s.get("nodes", 0))),
                 ("Jobs", f"{jobs.get('succeeded', 0)} succeeded, {jobs.get('failed', 0)} failed"),
                 ("Findings", f"{findings.get('new', 0)} new, {findings.get('reopened', 0)} reopened, "
                              f"{findings.get('fixed', 0)} fixed")]
        return Message(title=f"Session #{s.get('id')} {s.get('status')}", facts=facts,
                       summary=why, link=absolute_url(s.get("url", "")),
                       link_label="Open the session")
    if "intervention" in data:
        i = data["intervention"]
        return Message(title=f"Intervention opened: {i.get('title', '')}", summary=i.get("kind", ""),
                       facts=[("Organization", org), ("Kind", i.get("kind", ""))],
                       link=absolute_url(i.get("url", "")), link_label="Open the intervention")
    findings = data.get("findings") or []
    count = int(data.get("count", len(findings)))
    title = FINDING_TITLES.get(event, lambda n, d: f"{_plural(n, 'finding')}: {event}")(count, data)
    facts = [("Organization", org)]
    if data.get("session_id"):
        facts.append(("Session", f"#{data['session_id']}"))
    link = absolute_url(data.get("url") or (findings[0].get("url", "") if len(findings) == 1 else ""))
    shown = findings[:ITEMS_SHOWN]
    return Message(title=title, facts=facts, items=[finding_line(f) for f in shown], more=count - len(shown),
                   link=link or absolute_url(f"/o/{(payload.get('org') or {}).get('slug', '')}/findings/"),
                   link_label="Open in Watchpost")


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(payload: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message: header, facts, the findings, a button to the console."""
    m = message_for(payload)
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": m.title[:150]}}]
    if m.summary:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(m.summary)[:3000]}})
    if m.facts:
        blocks.append({"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*{_slack_escape(k)}*\n{_slack_escape(v) or '–'}"} for k, v in m.facts[:10]]})
    if m.items:
        lines = "\n".join(f"• {_slack_escape(line)}" for line in m.items)
        if m.more > 0:
            lines += f"\n…and {m.more} more"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": lines[:3000]}})
    if m.link:
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": m.link_label}, "url": m.link}]})
    return {"text": f"Watchpost: {m.title}", "blocks": blocks}


def teams_body(payload: dict[str, Any]) -> dict[str, Any]:
    """A message for a Teams workflow webhook: one Adaptive Card (schema 1.4)."""
    m = message_for(payload)
    body: list[dict[str, Any]] = [{"type": "TextBlock", "text": m.title, "weight": "Bolder", "size": "Medium",
                                   "wrap": True}]
    if m.summary:
        body.append({"type": "TextBlock", "text": m.summary, "wrap": True})
    if m.facts:
        body.append({"type": "FactSet", "facts": [{"title": k, "value": v or "–"} for k, v in m.facts]})
    for line in m.items:
        body.append({"type": "TextBlock", "text": line, "wrap": True, "spacing": "Small"})
    if m.more > 0:
        body.append({"type": "TextBlock", "text": f"…and {m.more} more", "isSubtle": True, "wrap": True})
    card: dict[str, Any] = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
                            "version": "1.4", "body": body}
    if m.link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": m.link_label, "url": m.link}]
    return {"type": "message", "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}]}


CHAT_BODIES = {Kind.SLACK: slack_body, Kind.TEAMS: teams_body}


def http_document(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The JSON document an HTTP channel of ``kind`` is sent for a stored event."""
    render = CHAT_BODIES.get(kind)
    return render(payload) if render is not None else payload


def email_content(payload: dict[str, Any]) -> tuple[str, str]:
    """Subject and plain-text body of an e-mail channel's message."""
    m = message_for(payload)
    org = (payload.get("org") or {}).get("name", "")
    lines = [m.title, ""]
    if m.summary:
        lines += [m.summary, ""]
    lines += [f"{k}: {v}" for k, v in m.facts]
    if m.items:
        lines += ["", *m.items]
        if m.more > 0:
            lines.append(f"…and {m.more} more")
    if m.link:
        lines += ["", f"{m.link_label}: {m.link}"]
    subject = f"[Watchpost] {org}: {m.title}" if org else f"[Watchpost] {m.title}"
    return subject[:200], "\n".join(lines)
