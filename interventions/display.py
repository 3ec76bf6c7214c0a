"""An intervention's subject and context in people's words (the pages; the API keeps the raw JSON).

The context is whatever its opener recorded (``scans.pipeline``, the watchdog, imports,
webhooks, reports): known keys get a label and a readable value, a nested mapping (a port
scan's counts) becomes a small list of its own, empty values are left out, and an unknown
key still shows, with its underscores turned into spaces.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

# key -> (label, shown in monospace)
CONTEXT_LABELS: dict[str, tuple[str, bool]] = {
    "error": ("Error", False),
    "reason": ("Why", False),
    "attempts": ("Attempts", False),
    "scanner": ("Scanner", False),
    "node": ("Node address", True),
    "session": ("Session", False),
    "stage": ("Stage", False),
    "stage_attempts": ("Stage attempts", False),
    "stage_deadline_at": ("Stage deadline", False),
    "heartbeat_at": ("Last heartbeat", False),
    "portscan": ("Port scan", False),
    "task_id": ("Task id", True),
    "correlation_id": ("Correlation id", True),
    "trace": ("Trace", True),
    "format": ("Format", False),
    "filename": ("File", True),
    "sha256": ("SHA-256", True),
    "requested_by": ("Requested by", False),
    "token": ("API token", True),
    "endpoint_id": ("Webhook endpoint", False),
    "url": ("URL", True),
    "report_id": ("Report", False),
    "kind": ("Kind", False),
}
# The order they are listed in: what went wrong first, identifiers for the logs last.
ORDER = list(CONTEXT_LABELS)
NESTED_LABELS = {"open": "Open ports", "closed": "Closed ports", "filtered": "Filtered ports", "error": "Probe errors"}
# Shown with another key: max_attempts as "2 of 3" beside attempts.
FOLDED = {"max_attempts"}
# "#5" reads as the session or report number it is.
NUMBERED = {"session", "report_id", "endpoint_id"}


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _label(key: str) -> str:
    return CONTEXT_LABELS.get(key, (str(key).replace("_", " ").capitalize(), False))[0]


def _when(value: str) -> str:
    """An ISO instant as the console writes absolute times; anything else unchanged."""
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return value
    if timezone.is_naive(moment):
        return value
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S %Z")


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v) for v in value if not _empty(v))
    if isinstance(value, dict):
        return ", ".join(f"{_label(k).lower()} {_plain(v)}" for k, v in value.items() if not _empty(v))
    return str(value)


def context_facts(context: dict[str, Any] | None) -> list[dict[str, Any]]:
    """``[{"label", "value", "mono", "items"}]``, known keys first; ``items`` for a nested mapping."""
    context = context if isinstance(context, dict) else {}
    keys = sorted((k for k in context if k not in FOLDED and not _empty(context[k])),
                  key=lambda k: (ORDER.index(k) if k in CONTEXT_LABELS else len(ORDER), str(k)))
    facts = []
    for key in keys:
        value = context[key]
        fact = {"key": key, "label": _label(key), "mono": CONTEXT_LABELS.get(key, ("", False))[1],
                "value": "", "items": []}
        if isinstance(value, dict):
            fact["items"] = [{"label": NESTED_LABELS.get(k, _label(k)), "value": _plain(v)}
                             for k, v in value.items() if not _empty(v)]
        elif key == "attempts" and not _empty(context.get("max_attempts")):
            fact["value"] = f"{value} of {context['max_attempts']}"
        elif key in NUMBERED:
            fact["value"] = f"#{value}"
        elif key.endswith("_at") and isinstance(value, str):
            fact["value"] = _when(value)
        else:
            fact["value"] = _plain(value)
        facts.append(fact)
    return facts


def context_summary(context: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The queue row's short line: port counts, attempts, task and correlation ids, only those recorded."""
    context = context if isinstance(context, dict) else {}
    parts = []
    scan = context.get("portscan")
    if isinstance(scan, dict) and scan:
        counts = ", ".join(f"{scan[k]} {k}" for k in ("open", "closed", "filtered") if not _empty(scan.get(k)))
        if counts:
            parts.append({"label": "ports", "value": counts, "mono": False})
    if not _empty(context.get("attempts")):
        attempts = str(context["attempts"])
        if not _empty(context.get("max_attempts")):
            attempts += f"/{context['max_attempts']}"
        parts.append({"label": "attempts", "value": attempts, "mono": False})
    if not _empty(context.get("task_id")):
        parts.append({"label": "task", "value": str(context["task_id"]), "mono": True})
    if not _empty(context.get("correlation_id")):
        parts.append({"label": "correlation", "value": str(context["correlation_id"]), "mono": True})
    return parts


def subject_label(intervention) -> str:
    """``node:6`` as "Node 127.0.10.6", ``job:12`` as "Job #12", ``session:3:execution`` as "Session #3, execution stage"."""
    subject = str(intervention.subject or "")
    what, _, rest = subject.partition(":")
    if what == "node" and intervention.node_id is not None and intervention.node is not None:
        return f"Node {intervention.node.address}"
    if what == "job" and rest:
        return f"Job #{rest}"
    if what == "session" and rest:
        number, _, stage = rest.partition(":")
        return f"Session #{number}, {stage} stage" if stage else f"Session #{number}"
    if what == "import" and rest:
        return f"Import of file {rest[:12]}…" if len(rest) > 12 else f"Import of {rest}"
    if what == "webhook" and rest:
        return f"Webhook endpoint #{rest.split(':')[0]}"
    if what == "report" and rest:
        return f"Report #{rest.split(':')[0]}"
    return subject
