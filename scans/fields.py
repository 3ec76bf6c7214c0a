"""The fields of a finding, a session and a job (see ``config.fields``), and which of them each place writes.

``FINDING`` names every field a finding is shown with, once: where it is read from and how it
is written as JSON. The API's list and detail (``scans.api``, and the list's SQL in
``scans.selectors.findings_page_json``), the console's findings table
(``scans.templatetags.findings_table``) and the reports' appendix (``reports.content``) each
pick the fields they show from it, by name.
"""

from __future__ import annotations

from config.fields import Fields, computed, number, plain, time
from scans.models import ScanSession
from scans.pipeline.sessions import STAGES

def _certainty(finding) -> str:
    return finding.certainty


def _certainty_sql(column) -> str:
    # Finding.is_potential, written by PostgreSQL (the query joins the finding's organization).
    return (f"CASE WHEN {column('match_confidence')} < {column('org__potential_threshold')} "
            f"AND {column('confirmed_at')} IS NULL THEN 'potential' ELSE 'certain' END")


FINDING = Fields(
    plain("id"), plain("node", "node_id"), plain("node_address", "node__address"), plain("node_name", "node__name"),
    plain("source"), plain("rule_id"), plain("title"), plain("severity"), number("cvss_score"),
    plain("cvss_vector"), plain("cve_ids"), plain("cwe"), plain("port"), plain("protocol"), plain("location"),
    plain("status"), time("first_seen"), time("last_seen"), plain("version"), plain("triage_reason"),
    time("risk_accepted_until"), plain("description"), plain("evidence"), plain("remediation"),
    plain("references"), plain("match_confidence"), plain("match_reason"), time("fixed_at"),
    plain("reopened_count"), plain("times_seen"), time("triaged_at"), plain("fingerprint"), plain("priority"),
    plain("priority_reasons"),
    # Certain or potential (below the organization's threshold, unconfirmed): see scans.models.potential_q.
    computed("certainty", python=_certainty, sql=_certainty_sql), time("confirmed_at"),
    # Ownership and the SLA (scans.findings.remediation, scans.findings.sla).
    plain("assignee", "assignee_id"), plain("ticket_url"), plain("ticket_key"), time("due_at"),
    time("sla_breached_at"),
)

# The API: a list's finding, and the whole finding (its detail, a triage's answer).
FINDING_API = FINDING.pick(
    "id", "node", "node_address", "source", "rule_id", "title", "severity", "cvss_score", "cve_ids", "cwe", "port",
    "protocol", "location", "status", "first_seen", "last_seen", "version", "triage_reason", "risk_accepted_until",
    "certainty", "priority", "assignee", "ticket_url", "ticket_key", "due_at")
FINDING_API_DETAIL = FINDING_API + FINDING.pick(
    "priority_reasons", "cvss_vector", "description", "evidence", "remediation", "references", "match_confidence",
    "match_reason", "fixed_at", "reopened_count", "times_seen", "triaged_at", "confirmed_at", "sla_breached_at")

# A row of the console's findings table.
FINDING_ROW = FINDING.pick(
    "id", "node", "node_address", "node_name", "source", "rule_id", "title", "severity", "cvss_score", "cve_ids",
    "port", "protocol", "status", "first_seen", "last_seen", "version", "risk_accepted_until", "match_confidence",
    "confirmed_at", "priority", "reopened_count", "times_seen", "due_at")

# An export of the list's filter (CSV and JSON: ``scans.findings.export``), one row per finding.
FINDING_EXPORT = FINDING.pick(
    "id", "node", "node_address", "node_name", "severity", "priority", "title", "status", "source", "rule_id",
    "cve_ids", "cwe", "cvss_score", "port", "protocol", "location", "first_seen", "last_seen", "due_at",
    "assignee", "ticket_key", "ticket_url", "triage_reason", "risk_accepted_until", "certainty", "fingerprint")

# A finding of a report's appendix (every format: HTML, PDF, CSV, JSON, SARIF).
FINDING_REPORT = FINDING.pick(
    "id", "node", "title", "severity", "status", "source", "rule_id", "fingerprint", "cvss_score", "cvss_vector",
    "cve_ids", "cwe", "port", "protocol", "location", "description", "evidence", "remediation", "first_seen",
    "last_seen")


def _stages(session: ScanSession) -> list[dict]:
    """Each stage's state and timing, from the session's own row (no job is read)."""
    timings = session.stage_timings or {}
    current = session.stage
    current_index = STAGES.index(current) if current in STAGES else len(STAGES)
    out = []
    for index, stage in enumerate(STAGES):
        timing = timings.get(stage) or {}
        if current == ScanSession.Stage.DONE or index < current_index:
            state = "done" if timing or current == ScanSession.Stage.DONE else "skipped"
        elif index == current_index:
            state = "failed" if session.status == ScanSession.Status.FAILED else (
                "current" if not session.is_finished else "done")
        else:
            state = "pending"
        out.append({"stage": stage, "state": state, "started_at": timing.get("started_at"),
                    "finished_at": timing.get("finished_at"), "seconds": timing.get("seconds")})
    return out


def _counts(session: ScanSession) -> dict:
    return {
        "nodes_total": session.nodes_total, "jobs_total": session.jobs_total,
        "jobs_succeeded": session.jobs_succeeded, "jobs_failed": session.jobs_failed,
        "jobs_cancelled": session.jobs_cancelled, "jobs_pending": max(0, session.jobs_total - session.jobs_finished),
        "findings_new": session.findings_new, "findings_updated": session.findings_updated,
        "findings_reopened": session.findings_reopened, "findings_fixed": session.findings_fixed,
    }


def _slug(profile) -> str | None:
    return profile.slug if profile is not None else None


SESSION = Fields(
    plain("id"), plain("status"), plain("stage"), plain("trigger"), computed("profile", "profile", python=_slug),
    plain("targets"), plain("cancel_requested"), plain("error"), plain("reason"), plain("correlation_id"),
    plain("window_override"), time("window_waiting_until"), plain("window_paused"),
    time("created_at"),
    time("started_at"), time("finished_at"), time("heartbeat_at"), computed("stages", python=_stages),
    computed("counts", python=_counts),
)

JOB = Fields(
    plain("id"), plain("node", "node_id"), plain("node_address", "node__address"), plain("node_name", "node__name"),
    plain("scanner"), plain("status"), plain("attempts"), plain("max_attempts"), plain("error"), time("queued_at"),
    time("started_at"), time("finished_at"),
)

# The API's job (a session's jobs), and a row of the session page's jobs table.
JOB_API = JOB.pick("id", "node", "node_address", "scanner", "status", "attempts", "max_attempts", "error", "queued_at",
                   "started_at", "finished_at")
JOB_ROW = JOB.pick("id", "node", "node_address", "node_name", "scanner", "status", "attempts", "max_attempts", "error",
                   "started_at", "finished_at")
