"""The scope guard. Refused addresses are only checked, never connected to."""

from __future__ import annotations

import pytest

from orgs.scope import (
    UNBOUNDED,
    CheckedTarget,
    ScopeError,
    parse_networks,
    parse_scope,
    resolve_and_check,
)

LOOPBACK_SCOPE = ["127.0.0.0/8", "::1/128"]


def test_a_loopback_address_in_scope_is_returned_as_the_address_to_connect_to():
    assert resolve_and_check("127.0.4.1", scope=LOOPBACK_SCOPE) == CheckedTarget("127.0.4.1", "", ("127.0.4.1",))
    assert resolve_and_check("[::1]", scope=LOOPBACK_SCOPE).address == "::1"


@pytest.mark.parametrize("address", ["10.0.0.1", "8.8.8.8", "169.254.169.254", "192.168.1.1", "2001:db8::1"])
def test_addresses_outside_the_allowed_networks_are_refused(address):
    with pytest.raises(ScopeError) as refused:
        resolve_and_check(address, scope=UNBOUNDED)

    assert refused.value.boundary == "allowed networks"
    assert refused.value.address == address
    assert address in str(refused.value) and "SCAN_ALLOWED_NETWORKS" in str(refused.value)


def test_an_ipv4_mapped_ipv6_address_is_judged_as_the_ipv4_address_it_reaches():
    with pytest.raises(ScopeError) as refused:
        resolve_and_check("::ffff:10.0.0.1", scope=UNBOUNDED)
    assert refused.value.address == "10.0.0.1"

    assert resolve_and_check("::ffff:127.0.0.1", scope=UNBOUNDED).address == "127.0.0.1"


def test_link_local_stays_refused_even_when_every_network_is_allowed():
    with pytest.raises(ScopeError, match="link-local"):
        resolve_and_check("169.254.169.254", scope=UNBOUNDED, allowed_networks="0.0.0.0/0")

    explicit = resolve_and_check("169.254.1.1", scope=UNBOUNDED, allowed_networks="169.254.1.0/24")
    assert explicit.address == "169.254.1.1"


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "224.0.0.1", "255.255.255.255"])
def test_unspecified_multicast_and_broadcast_addresses_are_never_scanned(address):
    with pytest.raises(ScopeError) as refused:
        resolve_and_check(address, scope=UNBOUNDED, allowed_networks="0.0.0.0/0,::/0")
    assert refused.value.boundary == "address kind"


def test_localhost_resolves_once_and_every_address_it_has_is_checked():
    checked = resolve_and_check("localhost", scope=LOOPBACK_SCOPE)

    assert checked.hostname == "localhost"
    assert checked.address in checked.addresses
    assert set(checked.addresses) <= {"127.0.0.1", "::1"}


def test_a_scope_narrower_than_the_allowed_networks_refuses_what_lies_outside_it():
    scope = parse_scope("127.0.4.0/24")

    assert resolve_and_check("127.0.4.200", scope=scope).address == "127.0.4.200"
    with pytest.raises(ScopeError) as refused:
        resolve_and_check("127.0.5.1", scope=scope)
    assert refused.value.boundary == "organization scope"
    assert "127.0.5.1" in str(refused.value) and "127.0.4.0/24" in str(refused.value)


def test_an_empty_organization_scope_refuses_everything():
    with pytest.raises(ScopeError, match="organization's scope \\(empty\\)"):
        resolve_and_check("127.0.0.1", scope=[])


def test_a_missing_scope_is_an_error_rather_than_no_boundary():
    with pytest.raises(ScopeError, match="UNBOUNDED"):
        resolve_and_check("127.0.0.1", scope=None)


def test_a_declared_name_vouches_for_its_addresses_but_not_past_the_allowed_networks():
    checked = resolve_and_check("LOCALHOST.", scope=["localhost"])
    assert checked.hostname == "localhost"

    with pytest.raises(ScopeError) as refused:
        resolve_and_check("localhost", scope=["localhost"], allowed_networks="10.0.0.0/8")
    assert refused.value.boundary == "allowed networks"
    assert "'localhost'" in str(refused.value)


def test_a_name_outside_the_declared_names_and_networks_is_refused():
    with pytest.raises(ScopeError) as refused:
        resolve_and_check("localhost", scope=["*.lab.internal", "127.0.9.0/24"])
    assert refused.value.boundary == "organization scope"


def resolver(answers):
    """A resolver with fixed answers, so no test sends a DNS query anywhere."""

    def resolve(name):
        if isinstance(answers, Exception):
            raise answers
        return answers

    return resolve


def test_a_name_that_does_not_resolve_is_refused_with_the_reason():
    with pytest.raises(ScopeError, match="does not resolve") as refused:
        resolve_and_check("gone.lab.internal", scope=UNBOUNDED, resolver=resolver(OSError("Name or service not known")))
    assert refused.value.boundary == "resolution"


def test_one_address_outside_the_boundaries_refuses_a_name_with_several():
    # The shape of a rebinding attempt: a loopback answer beside a private one.
    with pytest.raises(ScopeError) as refused:
        resolve_and_check("node.lab.internal", scope=["*.lab.internal"],
                          resolver=resolver(["127.0.4.1", "10.0.0.1"]))
    assert refused.value.address == "10.0.0.1" and refused.value.target == "node.lab.internal"


def test_a_declared_name_resolving_inside_the_allowed_networks_is_checked_at_every_address():
    checked = resolve_and_check("node.lab.internal", scope=["*.lab.internal"],
                                resolver=resolver(["127.0.4.1", "::ffff:127.0.4.2", "127.0.4.1"]))

    assert checked == CheckedTarget("127.0.4.1", "node.lab.internal", ("127.0.4.1", "127.0.4.2"))


@pytest.mark.parametrize("target", ["", "http://127.0.0.1/", "127.0.0.1:8080", "bad name", "-x.lab"])
def test_anything_but_an_address_or_a_host_name_is_refused_before_resolution(target):
    with pytest.raises(ScopeError) as refused:
        resolve_and_check(target, scope=UNBOUNDED)
    assert refused.value.boundary == "syntax"


def test_wildcards_cover_every_name_below_the_domain_but_not_the_domain_itself():
    scope = parse_scope(["*.lab.internal", "api.example.internal", "10.1.0.0/16"])

    assert scope.contains_hostname("a.lab.internal") and scope.contains_hostname("b.a.lab.internal")
    assert not scope.contains_hostname("lab.internal") and not scope.contains_hostname("evil-lab.internal")
    assert scope.contains_hostname("API.example.internal.")
    assert scope.describe() == "10.1.0.0/16, api.example.internal, *.lab.internal"


@pytest.mark.parametrize("entry", ["*.*.lab", "999.1.1.1/8", "not a host", "a..b"])
def test_a_malformed_scope_entry_is_refused_by_name(entry):
    with pytest.raises(ScopeError, match="is n"):
        parse_scope([entry])


def test_allowed_networks_read_from_a_comma_separated_setting_or_a_list():
    assert parse_networks("127.0.0.0/8, ::1/128") == parse_networks(["127.0.0.0/8", "::1"])


@pytest.mark.parametrize("target", ["::1%eth9", "[::1%eth9]", "fe80::1%lo"])
def test_an_ipv6_zone_id_is_refused_on_a_literal(target):
    with pytest.raises(ScopeError, match="zone") as refused:
        resolve_and_check(target, scope=UNBOUNDED, allowed_networks="127.0.0.0/8,::1/128,fe80::/10")
    assert refused.value.boundary == "syntax"


@pytest.mark.parametrize("embedded", [
    "64:ff9b::a9fe:a9fe",    # NAT64 of 169.254.169.254, the cloud metadata address
    "2002:a9fe:a9fe::1",      # 6to4 of 169.254.169.254
    "::169.254.169.254",      # IPv4-compatible
    "64:ff9b::a00:1",         # NAT64 of 10.0.0.1
    "64:ff9b:1::a00:1",       # local-use NAT64 of 10.0.0.1
])
def test_ipv6_forms_embedding_a_refused_ipv4_address_are_refused_even_when_all_ipv6_is_allowed(embedded):
    with pytest.raises(ScopeError) as refused:
        resolve_and_check(embedded, scope=UNBOUNDED, allowed_networks="127.0.0.0/8,::/0")
    assert refused.value.address in ("169.254.169.254", "10.0.0.1")


@pytest.mark.parametrize("embedded", ["64:ff9b::7f00:5", "2002:7f00:5::", "::127.0.0.5"])
def test_ipv6_forms_embedding_a_loopback_address_are_judged_and_connected_to_as_that_address(embedded):
    assert resolve_and_check(embedded, scope=["127.0.0.0/24"]).address == "127.0.0.5"


def test_a_name_in_scope_cannot_reach_outside_the_organizations_declared_networks():
    # Tenant A declares 127.0.4.0/24 and a name; the name pointing into tenant B's 127.0.9.0/24 is refused.
    with pytest.raises(ScopeError) as refused:
        resolve_and_check("node.lab.internal", scope=["127.0.4.0/24", "*.lab.internal"],
                          resolver=resolver(["127.0.9.7"]))
    assert refused.value.boundary == "organization scope"
    checked = resolve_and_check("node.lab.internal", scope=["127.0.4.0/24", "*.lab.internal"],
                                resolver=resolver(["127.0.4.7"]))
    assert checked.address == "127.0.4.7"


def test_checking_a_thousand_targets_against_one_scope_parses_that_scope_once(monkeypatch):
    from orgs import scope as module

    calls = []
    parse = module.parse_scope
    monkeypatch.setattr(module, "parse_scope", lambda entries: calls.append(entries) or parse(entries))
    entries = ["127.77.0.0/16", "once.parsed.internal"]  # a list no other test uses, so not cached yet

    for n in range(1000):
        resolve_and_check(f"127.77.{n // 250}.{n % 250 + 1}", scope=list(entries), allowed_networks="127.0.0.0/8")

    assert len(calls) == 1


def test_a_scope_that_does_not_parse_is_refused_every_time_it_is_used():
    for _ in range(2):
        with pytest.raises(ScopeError, match="neither a CIDR nor a host name"):
            resolve_and_check("127.0.0.1", scope=["not a scope!"], allowed_networks="127.0.0.0/8")
