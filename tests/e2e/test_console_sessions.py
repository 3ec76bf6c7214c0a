"""An analyst starts a session over loopback lab nodes from the browser and watches it reach done."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from nodes.models import Node
from scans.lab.services import start_node
from scans.models import ScanJob, ScanProfile, ScanSession
from scans.pipeline.stages import stage_run
from tests import inline
from tests.e2e.browser import log_in, no_horizontal_scroll, shot
from tests.factories import NodeFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Addresses of their own, so this lab does not collide with the pipeline tests' 127.0.60.x.
ADDRESSES = ["127.0.82.1", "127.0.82.2"]


@pytest.fixture
def quick_profile(world):
    """The organization's own small profile: two scanners over the lab's ports, short timeouts."""
    return ScanProfile.objects.create(
        org=world.org, slug="quick", name="Quick lab", scanners=["http", "exposure"], ports="80,6379",
        time_budget_seconds=60, job_timeout_seconds=3,
        options={"context": {"connect_timeout": 0.5, "read_timeout": 0.5}, "max_attempts": 2},
    )


def test_an_analyst_starts_a_session_on_selected_nodes_and_watches_it_reach_done(page, live_server, world, lab,
                                                                                 quick_profile, settings):
    settings.WATCHPOST_RETRY_BACKOFF_SECONDS = 0
    for address in ADDRESSES:
        start_node(lab, address, ("http", "redis"))
    nodes = [NodeFactory(org=world.org, address=address, name=f"lab-{n}") for n, address in enumerate(ADDRESSES, 1)]
    NodeFactory(org=world.org, address="127.0.82.9", name="not-selected")
    log_in(page, live_server, "acme-analyst")

    # The nodes page sends its selection this way; the form arrives with those nodes ticked.
    page.goto(f"{live_server.url}/o/acme/sessions/new/?node={nodes[0].pk}&node={nodes[1].pk}")
    assert page.locator("#id_scope_2").is_checked()
    assert page.locator("input[name=node]:checked").count() == 2
    page.select_option("#id_profile", "quick")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "session-start-390.png")
    assert no_horizontal_scroll(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.click("text=Start the session")
    page.wait_for_url(f"{live_server.url}/o/acme/sessions/*/")
    session = ScanSession.objects.get(org=world.org)
    assert sorted(session.targets) == ADDRESSES and session.profile == quick_profile
    live = page.locator("#session-live")
    assert live.get_attribute("hx-trigger") == "every 2s"
    # Status and stage agree: a queued session's first stage is not "running".
    if live.get_attribute("data-status") == "queued":
        assert page.locator('#session-progress li[data-stage="discovery"]').get_attribute("data-state") == "queued"
    shot(page, "session-queued-1280.png")

    # The page's start published the first stage to the broker, and no worker runs in this test.
    # A thread plays the worker instead: the inline runner calls the same stage services a Celery
    # worker would (stage_run from the first stage on), while the live server answers the browser's
    # polling from the rows. Eager Celery would not do: the pipeline publishes with send_task after
    # commit, which eager mode does not intercept. And not this thread: Playwright's event loop runs
    # here, and the scanners' asyncio.run() refuses to start inside a running loop.
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            inline.run_inline(stage_run, session_id=session.pk, stage=ScanSession.Stage.DISCOVERY)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            failures.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=worker, name="pipeline-worker")
    thread.start()
    page.wait_for_selector('#session-progress:not([data-status="queued"])', timeout=60_000)
    shot(page, "session-running-1280.png")
    thread.join(timeout=120)
    assert not thread.is_alive() and not failures, failures
    session.refresh_from_db()
    assert session.status == ScanSession.Status.SUCCEEDED, session.summary

    # The polled part turns to "Succeeded", and the finished fragment carries no trigger.
    page.wait_for_selector('#session-live[data-status="succeeded"]', timeout=30_000)
    assert page.locator("#session-live").get_attribute("hx-trigger") is None
    assert page.locator('#session-progress li[data-state="done"]').count() == 7
    # Everything else came with it, without a reload: no cancel button, times and jobs filled in.
    body = page.locator("#session-live").inner_text()
    assert "Cancel session" not in body and "not yet" not in body and "No job yet" not in body
    # Every job of the session: discovery and CVE matching per node, besides the profile's four scans.
    assert page.locator("#jobs tbody tr").count() == ScanJob.objects.filter(session=session).count()
    assert session.jobs_total == session.jobs_succeeded == 4
    assert Node.objects.filter(address__in=ADDRESSES, state=Node.State.UP).count() == 2
    shot(page, "session-done-1280.png")
    new_link = page.locator(".session-changes h3 a").first
    assert new_link.inner_text().endswith("new") and int(new_link.inner_text().split()[0]) == session.findings_new > 0
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    shot(page, "session-done-390.png")
    assert no_horizontal_scroll(page)

    # The session's new findings are one click away, in the findings list filtered by session and change.
    page.set_viewport_size({"width": 1280, "height": 900})
    new_link.click()
    page.wait_for_url(f"**/o/acme/findings/?session={session.pk}&change=new")
    assert page.locator("table.findings tbody tr").count() == min(session.findings_new, 50)

    page.goto(f"{live_server.url}/o/acme/sessions/")
    assert page.locator("table.sessions tbody tr").count() == 1
    shot(page, "sessions-1280.png")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    shot(page, "sessions-390.png")
    assert no_horizontal_scroll(page)
