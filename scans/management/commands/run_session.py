"""``python manage.py run_session --org SLUG``: start a scan session, optionally wait for it or run it here.

Exit status with ``--wait`` or ``--inline``: 0 succeeded, 2 partial (some jobs failed,
the rest processed), 1 failed or cancelled.
"""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from orgs.models import Organization
from scans.models import ScanSession
from scans.pipeline import dispatch
from scans.pipeline.sessions import SessionError, session_start, session_summary

EXIT_CODES = {ScanSession.Status.SUCCEEDED: 0, ScanSession.Status.PARTIAL: 2}


class Command(BaseCommand):
    help = "Start a scan session for an organization (targets become nodes when in scope)."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--targets", default="", help="comma-separated addresses or names (default: every enabled node)")
        parser.add_argument("--profile", default="", help="scan profile slug (default: the organization's, else standard)")
        parser.add_argument("--wait", action="store_true", help="follow the stages and exit non-zero on failure")
        parser.add_argument("--inline", action="store_true", help="run every stage in this process, without a broker")
        parser.add_argument("--json", action="store_true", help="print the session summary as JSON")
        parser.add_argument("--timeout", type=float, default=3600, help="with --wait: give up after this many seconds")

    def handle(self, *args, **options):
        org = Organization.objects.filter(slug=options["org"]).first()
        if org is None:
            raise CommandError(f"no organization with slug {options['org']!r}")
        targets = [t.strip() for t in options["targets"].split(",") if t.strip()]
        start = {"org": org, "trigger": ScanSession.Trigger.CLI, "targets": targets, "profile": options["profile"] or None}
        quiet = options["json"]
        try:
            if options["inline"]:
                with dispatch.inline():
                    session = session_start(**start)
                    self._say(quiet, f"Session {session.pk} started inline ({session.profile.slug} profile)")
                    last = [""]

                    def progress(name, kwargs):
                        session.refresh_from_db()
                        if session.stage != last[0]:
                            last[0] = session.stage
                            self._say(quiet, self._line(session))

                    dispatch.drain(on_step=progress)
            else:
                session = session_start(**start)
                self._say(quiet, f"Session {session.pk} queued ({session.profile.slug} profile, "
                                 f"correlation id {session.correlation_id})")
                if options["wait"]:
                    self._follow(session, quiet, options["timeout"])
        except SessionError as exc:
            raise CommandError(str(exc)) from None
        session.refresh_from_db()
        if options["json"]:
            self.stdout.write(json.dumps(session_summary(session=session), indent=2, default=str))
        elif session.is_finished:
            self._report(session)
        if (options["wait"] or options["inline"]) and session.is_finished:
            code = EXIT_CODES.get(session.status, 1)
            if code:
                raise SystemExit(code)

    def _say(self, quiet: bool, text: str) -> None:
        if not quiet:
            self.stdout.write(text)

    def _line(self, session: ScanSession) -> str:
        return (f"  {session.stage:<14} {session.status:<10} nodes {session.nodes_total}  jobs "
                f"{session.jobs_finished}/{session.jobs_total} (failed {session.jobs_failed})  "
                f"pending {max(session.stage_pending, 0)}")

    def _follow(self, session: ScanSession, quiet: bool, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            session.refresh_from_db()
            line = self._line(session)
            if line != last:
                self._say(quiet, line)
                last = line
            if session.is_finished:
                return
            time.sleep(1)
        raise CommandError(f"session {session.pk} still {session.status} in {session.stage} after {timeout:g}s")

    def _report(self, session: ScanSession) -> None:
        summary = session_summary(session=session)
        style = {"succeeded": self.style.SUCCESS, "partial": self.style.WARNING}.get(session.status, self.style.ERROR)
        self.stdout.write(style(f"Session {session.pk} {session.status} in {summary['seconds']}s"))
        for stage in summary["stages"]:
            if stage["seconds"] is not None:
                self.stdout.write(f"  {stage['stage']:<14} {stage['seconds']:>8.2f}s")
        self.stdout.write(f"  jobs: {summary['jobs']['execution']}")
        self.stdout.write(f"  findings: {summary['findings']}")
        for item in summary["interventions_opened"]:
            self.stdout.write(self.style.WARNING(f"  intervention #{item['id']} {item['kind']}: {item['title']}"))
        if session.error:
            self.stdout.write(self.style.ERROR(f"  error: {session.error}"))
