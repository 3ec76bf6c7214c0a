"""The default priority policy: each input moves the priority the way the policy says, in words."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from django.core.exceptions import ImproperlyConfigured

from scans.models import is_potential
from scans.findings.priority import (
    PRIORITY_POLICIES,
    REACHABLE,
    UNKNOWN,
    UNREACHABLE,
    DefaultPriorityPolicy,
    PriorityFacts,
    priority_policy,
    priority_policy_register,
)

policy = DefaultPriorityPolicy()
# A critical CVE, reachable on its port, on a node of medium criticality: P2 on its own.
BASE = PriorityFacts(severity="critical", cvss=9.8, reachability=REACHABLE, port=443, protocol="tcp")


def priority(**changes) -> int:
    return policy.priority(replace(BASE, **changes))[0]


def reasons(**changes) -> list[str]:
    return policy.priority(replace(BASE, **changes))[1]


def test_a_critical_cve_alone_is_p2():
    assert priority() == 2


def test_a_kev_listing_makes_it_p1_and_says_since_when():
    assert priority(kev_added=date(2024, 5, 2)) == 1
    assert reasons(kev_added=date(2024, 5, 2))[0] == "listed by CISA KEV since 2024-05-02"


def test_known_ransomware_use_is_named_and_lifts_a_medium_kev_finding_to_p1():
    high = dict(severity="high", cvss=7.5, kev_added=date(2024, 5, 2))
    assert priority(**high) == 1  # 35 + 40 = 75
    assert "known ransomware use" in reasons(**high, kev_ransomware=True)
    assert priority(severity="medium", cvss=5.0, kev_added=date(2024, 5, 2)) == 2
    assert priority(severity="medium", cvss=5.0, kev_added=date(2024, 5, 2), kev_ransomware=True) == 1


def test_a_high_epss_percentile_raises_the_priority_and_is_written_as_a_percentile():
    high = dict(severity="high", cvss=7.5)
    assert priority(**high) == 3
    assert priority(**high, epss_percentile=0.97) == 2
    assert priority(**high, epss_percentile=0.50) == 3
    assert "EPSS 97th percentile" in reasons(epss_percentile=0.97)
    assert "EPSS 1st percentile" in reasons(epss_percentile=0.013)


def test_the_cvss_base_score_decides_over_the_severity_label():
    assert priority(severity="low", cvss=9.1) == 2
    assert priority(severity="critical", cvss=5.0) == 3
    assert "CVSS 5.0" in reasons(cvss=5.0)


def test_without_a_cvss_score_the_severity_counts_and_the_reason_says_so():
    assert priority(cvss=None, severity="critical") == 2
    assert priority(cvss=None, severity="low") == 4
    assert "severity low (no CVSS score)" in reasons(cvss=None, severity="low")


def test_a_port_not_reachable_when_last_scanned_lowers_the_priority():
    assert priority(reachability=UNREACHABLE) == 3
    assert "not reachable on 443/tcp when last scanned" in reasons(reachability=UNREACHABLE)
    assert "reachable on 443/tcp" in reasons()


def test_an_unknown_reachability_costs_little_and_is_said():
    assert priority(kev_added=date(2024, 5, 2), reachability=UNKNOWN) == 1
    assert "reachability on 443/tcp not known yet" in reasons(reachability=UNKNOWN)


def test_a_finding_without_a_port_is_judged_by_its_node():
    assert "node reachable when last scanned" in reasons(port=None)
    assert "node not reachable when last scanned" in reasons(port=None, reachability=UNREACHABLE)


def test_a_potential_match_ranks_lower_until_confirmed():
    assert priority(potential=True) == 3
    assert any(r.startswith("potential") for r in reasons(potential=True))
    assert not any(r.startswith("potential") for r in reasons())


@pytest.mark.parametrize(("criticality", "expected"), [("low", 3), ("medium", 2), ("high", 2), ("critical", 2)])
def test_the_nodes_criticality_moves_a_critical_cve(criticality, expected):
    assert priority(criticality=criticality) == expected
    assert f"node criticality {criticality}" in reasons(criticality=criticality)


def test_a_critical_node_lifts_a_high_cve_to_p2_and_a_likely_exploited_critical_one_to_p1():
    assert priority(severity="high", cvss=7.5) == 3
    assert priority(severity="high", cvss=7.5, criticality="critical") == 2
    assert priority(epss_percentile=0.97) == 2
    assert priority(epss_percentile=0.97, criticality="critical") == 1


def test_the_reasons_read_as_the_issue_asks():
    facts = replace(BASE, kev_added=date(2024, 5, 2), epss_percentile=0.97, criticality="high")
    assert policy.priority(facts) == (1, ["listed by CISA KEV since 2024-05-02", "EPSS 97th percentile", "CVSS 9.8",
                                          "reachable on 443/tcp", "node criticality high"])


def test_informational_findings_stay_p4_even_on_a_critical_node():
    assert priority(severity="info", cvss=None, criticality="critical") == 4


def test_potential_means_below_the_threshold_and_not_confirmed():
    assert is_potential(0.3, None, 0.6)
    assert not is_potential(0.3, date(2026, 1, 1), 0.6)
    assert not is_potential(0.6, None, 0.6)
    assert not is_potential(None, None, 0.6)


def test_the_policy_is_chosen_by_name_and_a_registered_one_replaces_it(settings):
    class EverythingFirst:
        def priority(self, facts):
            return 1, ["all at once"]

    assert isinstance(priority_policy(), DefaultPriorityPolicy)
    priority_policy_register("everything-first", EverythingFirst)
    try:
        settings.WATCHPOST_PRIORITY_POLICY = "everything-first"
        assert priority_policy().priority(BASE) == (1, ["all at once"])
        settings.WATCHPOST_PRIORITY_POLICY = "nonesuch"
        with pytest.raises(ImproperlyConfigured, match="nonesuch"):
            priority_policy()
    finally:
        PRIORITY_POLICIES.pop("everything-first")
