"""The findings lifecycle in bulk: every transition, and what must never close a finding."""

from datetime import timedelta

import psycopg
import pytest
from django.db import IntegrityError, connection
from django.utils import timezone

from scans.findings.candidates import Coverage, FindingCandidate
from scans.findings import lifecycle
from scans.findings.lifecycle import findings_ingest
from scans.findings.normalization import finding_fingerprint, normalized_severity, severity_from_cvss
from scans.models import Finding, FindingEvent
from tests.factories import NodeFactory

pytestmark = pytest.mark.django_db


def candidate(rule="redis-open", port=6379, **extra):
    return FindingCandidate(source="exposure", rule_id=rule, title=extra.pop("title", f"Rule {rule}"), port=port, **extra)


def ingest(world, node, candidates, *, complete=True, ports=None, whole_host=False, seen_at=None):
    coverage = {node.pk: Coverage(host=node.address, ports=tuple(ports or ()), whole_host=whole_host)}
    return findings_ingest(org=world.org, source="exposure", items=[(node.pk, c) for c in candidates],
                           coverage=coverage, complete=complete, seen_at=seen_at)


@pytest.fixture
def node(world):
    return NodeFactory(org=world.org)


def later(minutes=1):
    return timezone.now() + timedelta(minutes=minutes)


@pytest.mark.parametrize(
    ("score", "expected"),
    [(10, "critical"), (9.0, "critical"), (8.9, "high"), (7.0, "high"), (6.9, "medium"), (4.0, "medium"),
     (3.9, "low"), (0.1, "low"), (0.0, "info"), (None, None)],
)
def test_severity_follows_the_cvss_bands_at_their_edges(score, expected):
    assert severity_from_cvss(score) == expected


def test_a_tools_own_severity_is_used_only_when_no_score_is_known():
    assert normalized_severity(candidate(severity="High")) == "high"
    assert normalized_severity(candidate(severity="low", cvss_score=9.8)) == "critical"
    assert normalized_severity(candidate(severity="warning")) == "medium"
    assert normalized_severity(candidate(severity="bogus")) == "info"


def test_the_fingerprint_ignores_cosmetic_changes_but_not_identity():
    base = candidate(location="/admin")
    assert finding_fingerprint(base) == finding_fingerprint(candidate(location="/admin", title="Renamed", description="x"))
    assert finding_fingerprint(base) != finding_fingerprint(candidate(location="/other"))
    assert finding_fingerprint(base) != finding_fingerprint(candidate(location="/admin", port=6380))


def test_a_first_run_creates_findings_as_new(world, node):
    counts = ingest(world, node, [candidate("a"), candidate("b", cvss_score=9.1)], ports=[6379])
    assert counts.as_dict() == {"new": 2, "updated": 0, "reopened": 0, "fixed": 0, "unchanged": 0}
    assert Finding.objects.get(rule_id="b").severity == "critical"


def test_the_same_finding_twice_in_one_run_is_stored_once(world, node):
    counts = ingest(world, node, [candidate("a"), candidate("a", title="again")])
    assert counts.new == 1 and Finding.objects.count() == 1


def test_a_rescan_reporting_the_same_finding_keeps_one_row_and_bumps_last_seen(world, node):
    ingest(world, node, [candidate("a")])
    first = Finding.objects.get()
    counts = ingest(world, node, [candidate("a")], seen_at=later())
    finding = Finding.objects.get()
    assert counts.unchanged == 1 and counts.new == 0
    assert finding.pk == first.pk and finding.last_seen > first.last_seen and finding.times_seen == 2
    assert finding.first_seen == first.first_seen


def test_a_changed_description_or_severity_counts_as_updated(world, node):
    ingest(world, node, [candidate("a", cvss_score=5.0)])
    counts = ingest(world, node, [candidate("a", cvss_score=9.5, description="worse")], seen_at=later())
    assert counts.updated == 1
    finding = Finding.objects.get()
    assert finding.severity == "critical" and finding.description == "worse"


def test_a_complete_rescan_that_no_longer_reports_a_finding_fixes_it(world, node):
    ingest(world, node, [candidate("a"), candidate("b")], ports=[6379])
    counts = ingest(world, node, [candidate("a")], ports=[6379], seen_at=later())
    assert counts.fixed == 1
    fixed = Finding.objects.get(rule_id="b")
    assert fixed.status == Finding.Status.FIXED and fixed.fixed_at is not None
    assert Finding.objects.get(rule_id="a").status == Finding.Status.OPEN


def test_a_partial_or_failed_run_closes_nothing(world, node):
    ingest(world, node, [candidate("a"), candidate("b")], ports=[6379])
    counts = ingest(world, node, [], complete=False, ports=[6379], seen_at=later())
    assert counts.fixed == 0
    assert set(Finding.objects.values_list("status", flat=True)) == {"open"}


def test_a_run_that_did_not_cover_the_port_does_not_close_findings_on_it(world, node):
    ingest(world, node, [candidate("a", port=6379), candidate("b", port=443)], ports=[6379, 443])
    counts = ingest(world, node, [], ports=[443], seen_at=later())
    assert counts.fixed == 1
    assert Finding.objects.get(rule_id="a").status == "open"
    assert Finding.objects.get(rule_id="b").status == "fixed"


def test_a_whole_host_run_closes_findings_on_any_port(world, node):
    ingest(world, node, [candidate("a", port=6379), candidate("b", port=None)], whole_host=True)
    assert ingest(world, node, [], whole_host=True, seen_at=later()).fixed == 2


def test_another_sources_run_never_closes_this_sources_findings(world, node):
    ingest(world, node, [candidate("a")], ports=[6379])
    other = findings_ingest(org=world.org, source="tls", items=[], complete=True,
                            coverage={node.pk: Coverage(host=node.address, whole_host=True)}, seen_at=later())
    assert other.fixed == 0 and Finding.objects.get().status == "open"


def test_a_fixed_finding_that_returns_is_reopened(world, node):
    ingest(world, node, [candidate("a")], ports=[6379])
    ingest(world, node, [], ports=[6379], seen_at=later(1))
    counts = ingest(world, node, [candidate("a")], ports=[6379], seen_at=later(2))
    finding = Finding.objects.get()
    assert counts.reopened == 1
    assert finding.status == "open" and finding.fixed_at is None and finding.reopened_count == 1


@pytest.mark.parametrize("status", [Finding.Status.FALSE_POSITIVE, Finding.Status.RISK_ACCEPTED])
def test_triage_survives_rescans_that_report_it_again_or_stop_reporting_it(world, node, status):
    ingest(world, node, [candidate("a")], ports=[6379])
    Finding.objects.update(status=status, triage_reason="checked by hand")
    assert ingest(world, node, [candidate("a", cvss_score=9.9)], ports=[6379], seen_at=later(1)).updated == 1
    assert Finding.objects.get().status == status
    assert ingest(world, node, [], ports=[6379], seen_at=later(2)).fixed == 0
    assert Finding.objects.get().status == status and Finding.objects.get().triage_reason == "checked by hand"


def test_findings_are_deduplicated_per_node_not_across_nodes(world):
    first, second = NodeFactory(org=world.org), NodeFactory(org=world.org)
    counts = findings_ingest(org=world.org, source="exposure", complete=False,
                             items=[(first.pk, candidate("a")), (second.pk, candidate("a"))])
    assert counts.new == 2


def test_batches_are_written_in_order_so_a_later_batch_sees_what_an_earlier_one_wrote(world, node):
    """The next batch is keyed on a thread while one is written; the writes stay in order."""
    items = [(node.pk, candidate(f"r{i}")) for i in range(7)] + [(node.pk, candidate("r0", title="Said again"))]
    counts = findings_ingest(org=world.org, source="exposure", items=items, complete=False, batch_size=3)
    assert (counts.new, counts.updated) == (7, 1)
    assert Finding.objects.get(rule_id="r0").title == "Said again"


def test_a_refused_candidate_in_a_later_batch_writes_nothing_of_the_run(world, node):
    items = [(node.pk, candidate(f"r{i}")) for i in range(4)] + [(node.pk, FindingCandidate(source="tls", rule_id="x", title="x"))]
    with pytest.raises(ValueError, match="given to an ingest"):
        findings_ingest(org=world.org, source="exposure", items=items, complete=False, batch_size=2)
    assert not Finding.objects.exists()


def test_deleting_a_node_or_an_organization_deletes_its_findings_and_their_history(world, node):
    """The database checks a finding's node only; Django deletes the rest with their owner."""
    ingest(world, node, [candidate("a")])
    kept = NodeFactory(org=world.other_org)
    findings_ingest(org=world.other_org, source="exposure", items=[(kept.pk, candidate("b"))], complete=False)
    node.delete()
    assert not Finding.objects.filter(org=world.org).exists()
    remaining = Finding.objects.get()
    assert remaining.rule_id == "b"
    assert list(FindingEvent.objects.values_list("finding_id", flat=True)) == [remaining.pk]
    world.other_org.delete()
    assert not Finding.objects.exists() and not FindingEvent.objects.exists()


def test_a_candidate_from_another_source_is_refused():
    with pytest.raises(ValueError, match="given to an ingest"):
        findings_ingest(org=None, source="tls", items=[(1, candidate("a"))], complete=False)


def test_hostile_values_are_clamped_not_stored_as_given(world, node):
    ingest(world, node, [candidate("a" * 600, port=70000, cvss_score="11.5", cwe=-3, title="t" * 900,
                                   evidence={"blob": "x" * 100_000})])
    finding = Finding.objects.get()
    assert len(finding.rule_id) == 255 and len(finding.title) == 500
    assert finding.port is None and finding.cvss_score is None and finding.cwe is None
    assert finding.evidence["truncated"] is True


def test_queries_per_batch_stay_constant_as_the_batch_and_table_grow(world, statements, monkeypatch):
    copy = psycopg.Cursor.copy

    def counted_copy(self, statement, *args, **kwargs):
        statements.append(str(statement))
        return copy(self, statement, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "copy", counted_copy)
    nodes = [NodeFactory(org=world.org) for _ in range(20)]

    def queries_for(rules, seen_at):
        items = [(n.pk, candidate(f"r{i}", title=f"v{seen_at.minute}" if i % 2 else "same")) for n in nodes for i in range(rules)]
        statements.clear()
        findings_ingest(org=world.org, source="exposure", items=items, complete=False, seen_at=seen_at,
                        batch_size=10_000)
        # Each statement by its first two words, savepoints without their names.
        return [" ".join(word for word in sql.split()[:2] if not word.startswith('"')) for sql in statements]

    # 100 new findings: one statement looks them up (and draws their ids), one locks their nodes
    # against deletion, then a COPY each for the findings and for their "new" events.
    small = queries_for(5, later(1))
    # Ten times the batch over a table that already holds rows, mixing new, unchanged and changed
    # findings, inside one savepoint: the same lookup, which also touches the unchanged, the same
    # two COPYs, and one statement that rewrites the changed.
    large = queries_for(50, later(2))
    assert small == ["SAVEPOINT", "WITH k", "SELECT id", "COPY scans_finding", "COPY scans_findingevent",
                     "RELEASE SAVEPOINT"]
    assert large == [*small[:-1], "WITH changed", "RELEASE SAVEPOINT"]
    assert Finding.objects.count() == 20 * 50


def test_findings_for_a_node_that_no_longer_exists_are_refused_and_nothing_is_written(world):
    node = NodeFactory(org=world.org)
    gone = NodeFactory(org=world.org)
    gone_id = gone.pk
    gone.delete()
    with pytest.raises(IntegrityError, match=str(gone_id)):
        findings_ingest(org=world.org, source="exposure", complete=False,
                        items=[(node.pk, candidate("r1")), (gone_id, candidate("r2"))])
    assert not Finding.objects.filter(org=world.org).exists()


def test_the_lookup_probes_the_unique_index_even_when_statistics_have_never_seen_the_organization(world):
    """Statistics from before a large import take a new organization for a handful of rows; a plan
    that reads all of its findings for every batch would make the import quadratic."""
    other_nodes = [NodeFactory(org=world.other_org) for _ in range(5)]
    findings_ingest(org=world.other_org, source="exposure", complete=False,
                    items=[(n.pk, candidate(f"r{i}")) for n in other_nodes for i in range(200)])
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Finding._meta.db_table}")
    nodes = [NodeFactory(org=world.org) for _ in range(10)]
    findings_ingest(org=world.org, source="exposure", complete=False,
                    items=[(n.pk, candidate(f"r{i}")) for n in nodes for i in range(500)])
    keys = [(n.pk, finding_fingerprint(candidate(f"r{i}"))) for n in nodes for i in range(0, 500, 50)]

    params = {"org": world.org.pk, "session": None, "seen_at": later(), "fixed": Finding.Status.FIXED,
              "nodes": ",".join(str(node) for node, _ in keys), "fingerprints": ",".join(f for _, f in keys),
              "digests": ",".join("0" * 32 for _ in keys)}
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute("EXPLAIN (COSTS OFF) " + lifecycle._SEE, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    probe = plan.split("CTE known")[1].split("CTE touched")[0]
    assert "finding_unique_org_node_fingerprint" in probe, plan
    assert "Hash" not in probe and "Seq Scan" not in probe, plan


def test_new_findings_keep_tabs_line_breaks_and_backslashes_in_every_text_exactly(world, node):
    awkward = 'C:\\temp\\new\tfile\r\nline "quoted" \\N \\\\'
    ingest(world, node, [candidate(title=f"Title {awkward}", location=f"/path {awkward}", description=awkward,
                                   evidence={"raw": awkward, f"key {awkward}": [awkward, 1]})])

    finding = Finding.objects.get(node=node)
    assert finding.title == f"Title {awkward}"
    assert finding.location == f"/path {awkward}"
    assert finding.description == awkward
    assert finding.evidence == {"raw": awkward, f"key {awkward}": [awkward, 1]}


def test_a_batch_of_new_findings_sent_in_several_parts_is_written_whole_with_one_event_each(world, node):
    count = lifecycle._COPY_CHUNK * 3 + 5
    counts = ingest(world, node, [candidate(rule=f"rule-{i}", location=f"/{i}\t{'x' * i}") for i in range(count)])

    assert counts.new == count
    assert sorted(Finding.objects.filter(node=node).values_list("location", flat=True)) == sorted(
        f"/{i}\t{'x' * i}" for i in range(count))
    assert FindingEvent.objects.filter(finding__node=node, kind=FindingEvent.Kind.NEW).count() == count
