"""What the reporting stage plugs into the layers below it when Django is ready, so that none of
them imports reports: webhooks subscribe to the domain events, and the pipeline's reporting stage
writes a session's report through its hook."""

from __future__ import annotations

from reports.services import session_report_write
from reports.webhooks.services import webhooks_connect
from scans.pipeline.stages import session_report_writer_register


def hooks_connect() -> None:
    webhooks_connect()
    session_report_writer_register(writer=session_report_write)
