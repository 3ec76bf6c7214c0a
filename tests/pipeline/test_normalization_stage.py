"""The normalization stage reads jobs in batches: its queries do not grow with the number of jobs."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from scans.models import Finding, ScanJob, ScanSession
from scans.pipeline import stages


def replay_normalization(session) -> int:
    """Forget the session's findings and normalize its jobs again; the number of queries it took."""
    Finding.objects.filter(org=session.org).delete()
    ScanJob.objects.filter(session=session).update(normalized=False)
    ScanSession.objects.filter(pk=session.pk).update(stage=ScanSession.Stage.NORMALIZATION,
                                                     status=ScanSession.Status.RUNNING)
    session.refresh_from_db()
    with CaptureQueriesContext(connection) as queries:
        stages.normalization(session)
    return len(queries)


def test_normalizing_three_times_the_jobs_takes_the_same_queries(world, lab_nodes, quick_profile, run_inline):
    small = run_inline(org=world.org, trigger=ScanSession.Trigger.CLI, targets=lab_nodes(1), profile=quick_profile)
    large = run_inline(org=world.other_org, trigger=ScanSession.Trigger.CLI, targets=lab_nodes(3, first=10),
                       profile=quick_profile)
    assert ScanJob.objects.filter(session=large).count() == 3 * ScanJob.objects.filter(session=small).count()

    assert replay_normalization(large) == replay_normalization(small)
    assert Finding.objects.filter(org=world.other_org).count() == large.findings_new > 0
