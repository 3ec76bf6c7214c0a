import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scans.cve.cpe import (
    ANY,
    NA,
    Configuration,
    Cpe,
    CpeError,
    MatchCriterion,
    Observed,
    attribute_matches,
    nvd_products,
)
from scans.cve.versions import parse_version

OPENSSH = ("openbsd", "openssh")


def test_it_parses_a_formatted_string():
    cpe = Cpe.parse("cpe:2.3:a:openbsd:openssh:8.9p1:*:*:*:*:*:*:*")
    assert (cpe.part, cpe.vendor, cpe.product, cpe.version) == ("a", "openbsd", "openssh", "8.9p1")
    assert cpe.update == ANY
    assert cpe.vendor_product == OPENSSH
    assert str(cpe) == "cpe:2.3:a:openbsd:openssh:8.9p1:*:*:*:*:*:*:*"


def test_it_unescapes_quoted_characters():
    cpe = Cpe.parse(r"cpe:2.3:o:d2iq:dc\/os:1.10\:2:*:*:*:*:*:*:*")
    assert cpe.literal("product") == "dc/os"
    assert cpe.literal("version") == "1.10:2"
    assert str(cpe) == r"cpe:2.3:o:d2iq:dc\/os:1.10\:2:*:*:*:*:*:*:*"


def test_two_spellings_of_one_name_compare_equal():
    assert Cpe.parse(r"cpe:2.3:a:nodejs:node\.js:*:*:*:*:*:*:*:*") == Cpe.parse("cpe:2.3:a:NodeJS:node.js:*:*:*:*:*:*:*:*")


def test_a_quoted_star_or_dash_is_a_literal_not_a_logical_value():
    cpe = Cpe.parse(r"cpe:2.3:a:vendor:product:\-:\*:*:*:*:*:*:*")
    assert cpe.version == r"\-" and cpe.version != NA
    assert cpe.update == r"\*" and cpe.update != ANY
    assert cpe.literal("version") == "-"
    assert Cpe.parse("cpe:2.3:a:vendor:product:-:*:*:*:*:*:*:*").version == NA


def test_a_short_name_is_padded_with_any():
    cpe = Cpe.parse("cpe:2.3:a:openbsd:openssh:8.9p1")
    assert cpe.target_hw == ANY and cpe.other == ANY


def test_it_reads_a_cpe_22_uri_as_nmap_writes_it():
    assert Cpe.parse("cpe:/a:openbsd:openssh:8.9p1") == Cpe.parse("cpe:2.3:a:openbsd:openssh:8.9p1:*:*:*:*:*:*:*")
    assert Cpe.parse("cpe:/a:apache:http_server:2.4.49%2b").literal("version") == "2.4.49+"


def test_it_builds_a_name_from_literal_values():
    cpe = Cpe.build("nodejs", "node.js", "18.0.0:rc")
    assert str(cpe) == r"cpe:2.3:a:nodejs:node.js:18.0.0\:rc:*:*:*:*:*:*:*"
    assert Cpe.build("openbsd", "openssh").version == ANY


@pytest.mark.parametrize(
    "text",
    [
        "",
        "openssh 8.9",
        "cpe:2.3:",
        "cpe:2.3:a:openbsd",
        "cpe:2.3:x:openbsd:openssh:*:*:*:*:*:*:*:*",
        "cpe:2.3:a:openbsd:openssh:*:*:*:*:*:*:*:*:extra",
        "cpe:2.3:a::openssh:*:*:*:*:*:*:*:*",
        "cpe:2.3:a:open bsd:openssh:*:*:*:*:*:*:*:*",
        "cpe:2.3:a:openbsd:openssh:8.9\\",
        "cpe:2.3:a:openbsd:openssh:é:*:*:*:*:*:*:*",
    ],
)
def test_it_refuses_what_is_not_a_cpe_name(text):
    with pytest.raises(CpeError):
        Cpe.parse(text)


@pytest.mark.parametrize(
    "source, target, expected",
    [
        (ANY, "openssh", True),
        (ANY, NA, True),
        (NA, NA, True),
        (NA, "openssh", False),
        ("openssh", "openssh", True),
        ("openssh", ANY, False),
        ("open*", "openssh", True),
        ("open?", "opens", True),
        ("open?", "openssh", False),
        (r"open\*", "openssh", False),
        (r"open\*", r"open\*", True),
    ],
)
def test_attribute_matching_follows_the_cpe_name_matching_rules(source, target, expected):
    assert attribute_matches(source, target) is expected


def test_it_maps_fingerprinted_names_to_nvd_products():
    assert nvd_products("OpenSSH") == (OPENSSH,)
    assert nvd_products("Apache httpd") == (("apache", "http_server"),)
    assert set(nvd_products("nginx")) == {("f5", "nginx"), ("nginx", "nginx")}
    assert ("mobyproject", "moby") in nvd_products("docker")
    assert nvd_products("go-ethereum") == nvd_products("Geth") == (("ethereum", "go_ethereum"),)
    assert nvd_products("something else") == ()


def test_a_cpe_of_a_renamed_vendor_brings_its_siblings():
    assert set(nvd_products("", "cpe:2.3:a:nginx:nginx:1.18.0:*:*:*:*:*:*:*")) == {("nginx", "nginx"), ("f5", "nginx")}


def criterion(**ranges) -> MatchCriterion:
    names = {
        "si": "versionStartIncluding",
        "se": "versionStartExcluding",
        "ei": "versionEndIncluding",
        "ee": "versionEndExcluding",
    }
    data = {"vulnerable": True, "criteria": "cpe:2.3:a:openbsd:openssh:*:*:*:*:*:*:*:*"}
    data.update({names[k]: value for k, value in ranges.items()})
    return MatchCriterion.from_nvd(data)


@pytest.mark.parametrize(
    "ranges, version, inside",
    [
        ({"si": "8.5p1", "ee": "9.8p1"}, "8.5", False),
        ({"si": "8.5p1", "ee": "9.8p1"}, "8.5p1", True),
        ({"si": "8.5p1", "ee": "9.8p1"}, "9.8", True),
        ({"si": "8.5p1", "ee": "9.8p1"}, "9.8p1", False),
        ({"se": "8.5p1", "ei": "9.8p1"}, "8.5p1", False),
        ({"se": "8.5p1", "ei": "9.8p1"}, "8.5p2", True),
        ({"se": "8.5p1", "ei": "9.8p1"}, "9.8p1", True),
        ({"se": "8.5p1", "ei": "9.8p1"}, "9.8p2", False),
        ({"ee": "4.4"}, "4.3p2", True),
        ({"ee": "4.4"}, "4.4", False),
        ({"ei": "7.7"}, "7.7", True),
        ({"ei": "7.7"}, "7.7p1", False),
        ({"si": "6.2"}, "6.1", False),
        ({"si": "6.2"}, "99.0", True),
    ],
)
def test_a_range_holds_exactly_at_its_edges(ranges, version, inside):
    verdict = criterion(**ranges).evaluate(parse_version(version))
    assert verdict.matched is inside
    assert verdict.confidence == (1.0 if inside else 0.0)


def test_the_reason_states_the_range_in_interval_notation():
    verdict = criterion(si="8.5p1", ee="9.8p1").evaluate(parse_version("8.9p1"))
    assert verdict.reason == "openssh 8.9p1 is within [8.5p1, 9.8p1)"
    verdict = criterion(ee="4.4").evaluate(parse_version("4.4"))
    assert verdict.reason == "openssh 4.4 is outside (-inf, 4.4)"


def test_an_exact_criterion_reads_the_update_attribute_as_the_patch_level():
    with_patch = MatchCriterion.from_nvd({"criteria": "cpe:2.3:a:openbsd:openssh:8.5:p1:*:*:*:*:*:*"})
    no_patch = MatchCriterion.from_nvd({"criteria": "cpe:2.3:a:openbsd:openssh:9.8:-:*:*:*:*:*:*"})
    any_patch = MatchCriterion.from_nvd({"criteria": "cpe:2.3:a:openbsd:openssh:7.2:*:*:*:*:*:*:*"})
    assert with_patch.evaluate(parse_version("8.5p1")).matched
    assert not with_patch.evaluate(parse_version("8.5")).matched
    assert no_patch.evaluate(parse_version("9.8")).matched
    assert not no_patch.evaluate(parse_version("9.8p1")).matched
    assert any_patch.evaluate(parse_version("7.2p2")).matched
    assert not any_patch.evaluate(parse_version("7.2.1")).matched


def test_a_distribution_build_matches_below_the_default_threshold_and_says_why():
    observed = Observed(products=(OPENSSH,), version=parse_version("8.9p1"), distribution="Ubuntu 3ubuntu0.1")
    verdict = Configuration.from_nvd({"nodes": [{"cpeMatch": [
        {"vulnerable": True, "criteria": "cpe:2.3:a:openbsd:openssh:*:*:*:*:*:*:*:*", "versionStartIncluding": "8.6",
         "versionEndExcluding": "9.8"}]}]}).evaluate(observed)
    assert verdict.matched and verdict.confidence == pytest.approx(0.5)
    assert verdict.basis == "backport"
    assert verdict.reason.endswith("a distribution build (Ubuntu 3ubuntu0.1) may carry backported fixes")


def test_a_criterion_states_its_basis_with_its_confidence():
    assert criterion(si="8.6", ee="9.8").evaluate(parse_version("8.9p1")).basis == "range"
    exact = MatchCriterion.from_nvd({"criteria": "cpe:2.3:a:openbsd:openssh:8.5:p1:*:*:*:*:*:*"})
    assert exact.evaluate(parse_version("8.5p1")).basis == "exact"
    every = MatchCriterion.from_nvd({"criteria": "cpe:2.3:a:openbsd:openssh:*:*:*:*:*:*:*:*"})
    assert (every.evaluate(parse_version("8.5p1")).basis, every.evaluate(parse_version("8.5p1")).confidence) == (
        "banner", 0.7)


def test_a_bound_without_a_version_claims_nothing():
    assert not criterion(ee="unknown").evaluate(parse_version("1.0")).matched


def test_an_unknown_version_matches_nothing():
    verdict = criterion(ee="9.8").evaluate(None)
    assert not verdict.matched and "unknown" in verdict.reason


def openssh(version: str, platforms=frozenset()) -> Observed:
    return Observed(products=(OPENSSH,), version=parse_version(version), platforms=platforms)


def platform_configuration(negate: bool = False) -> Configuration:
    return Configuration.from_nvd(
        {
            "operator": "AND",
            "nodes": [
                {"operator": "OR", "cpeMatch": [{"vulnerable": True, "criteria": "cpe:2.3:a:openbsd:openssh:*:*:*:*:*:*:*:*", "versionEndExcluding": "9.0"}]},
                {
                    "operator": "OR",
                    "negate": negate,
                    "cpeMatch": [{"vulnerable": False, "criteria": "cpe:2.3:o:debian:debian_linux:11.0:*:*:*:*:*:*:*"}],
                },
            ],
        }
    )


def test_a_configuration_needing_an_unobserved_platform_matches_with_lower_confidence():
    verdict = platform_configuration().evaluate(openssh("8.4p1"))
    assert verdict.matched and verdict.confidence == pytest.approx(0.6)
    assert verdict.basis == "condition"
    assert "only when running on debian_linux 11.0" in verdict.reason


def test_a_platform_suggested_by_the_version_raises_the_confidence():
    verdict = platform_configuration().evaluate(openssh("8.4p1", frozenset({("debian", "debian_linux")})))
    assert verdict.matched and verdict.confidence == pytest.approx(0.85)


def test_a_negated_platform_node_stays_unknown_and_does_not_refute():
    assert platform_configuration(negate=True).evaluate(openssh("8.4p1")).matched


def test_a_fixed_version_fails_the_and_whatever_the_platform():
    assert not platform_configuration().evaluate(openssh("9.0")).matched


def test_a_product_that_is_only_the_platform_is_not_reported():
    configuration = Configuration.from_nvd(
        {
            "operator": "AND",
            "nodes": [
                {"cpeMatch": [{"vulnerable": True, "criteria": "cpe:2.3:a:someone:ssh_plugin:1.0:*:*:*:*:*:*:*"}]},
                {"cpeMatch": [{"vulnerable": False, "criteria": "cpe:2.3:a:openbsd:openssh:*:*:*:*:*:*:*:*"}]},
            ],
        }
    )
    assert not configuration.evaluate(openssh("8.4p1")).matched


def test_a_criterion_for_another_edition_does_not_match_an_observation_that_names_its_own():
    plus = MatchCriterion.from_nvd({"criteria": "cpe:2.3:a:f5:nginx:*:*:*:*:plus:*:*:*", "versionEndIncluding": "r27"})
    assert not plus.agrees_with(Cpe.parse("cpe:2.3:a:f5:nginx:1.18.0:*:*:*:open_source:*:*:*"))
    assert plus.agrees_with(Cpe.parse("cpe:2.3:a:f5:nginx:1.18.0:*:*:*:*:*:*:*"))


def test_a_configuration_round_trips_through_the_nvd_shape():
    configuration = platform_configuration()
    assert Configuration.from_nvd(configuration.to_nvd()) == configuration


VALUE = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12
)


@settings(max_examples=300, deadline=None)
@given(VALUE, VALUE, VALUE)
def test_a_built_name_survives_formatting_and_parsing(vendor, product, version):
    cpe = Cpe.build(vendor, product, version)
    again = Cpe.parse(str(cpe))
    assert again == cpe
    assert again.literal("vendor") == vendor.lower()
    assert again.literal("product") == product.lower()


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80))
def test_the_parser_raises_only_cpe_errors(text):
    for candidate in (text, "cpe:2.3:" + text, "cpe:/" + text):
        try:
            cpe = Cpe.parse(candidate)
        except CpeError:
            continue
        assert Cpe.parse(str(cpe)) == cpe


def test_a_bare_version_beside_its_patch_levels_means_the_bare_release():
    node = {
        "operator": "OR",
        "cpeMatch": [
            {"vulnerable": True, "criteria": "cpe:2.3:a:openbsd:openssh:7.1:*:*:*:*:*:*:*"},
            {"vulnerable": True, "criteria": "cpe:2.3:a:openbsd:openssh:7.1:p1:*:*:*:*:*:*"},
        ],
    }
    configuration = Configuration.from_nvd({"nodes": [node]})
    assert configuration.evaluate(openssh("7.1")).matched
    assert configuration.evaluate(openssh("7.1p1")).matched
    assert not configuration.evaluate(openssh("7.1p2")).matched
