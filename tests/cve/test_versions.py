import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scans.cve.versions import Version, parse_version


def v(text: str) -> Version:
    parsed = parse_version(text)
    assert parsed is not None, text
    return parsed


@pytest.mark.parametrize(
    "older, newer",
    [
        ("7.2p2", "7.4"),
        ("8.9", "8.9p1"),
        ("8.9p1", "8.9p2"),
        ("8.9p2", "9.0"),
        ("9.8", "9.8p1"),
        ("2.4.5", "2.4.49"),
        ("2.4.49", "2.4.50"),
        ("1.6.9", "1.6.21"),
        ("4.0.9", "4.0.14"),
        ("8.0.9", "8.0.32"),
        ("15.4", "16.0"),
        ("20.10.7", "20.10.24"),
        ("19.03.15", "20.10.3"),
        ("v1.10.17-stable", "v1.10.26-stable"),
        ("1.1.1", "1.1.1a"),
        ("1.1.1a", "1.1.1k"),
        ("7.0-rc2", "7.0"),
        ("7.0-rc1", "7.0-rc2"),
        ("7.0-alpha", "7.0-beta"),
        ("7.0-beta3", "7.0-rc1"),
        ("16beta1", "16rc1"),
        ("3.0.0a1", "3.0.0b1"),
        ("1.10.17", "1.10.18-unstable"),
        ("1.10.18-unstable", "1.10.18"),
        ("17.03.0-ce-rc1", "17.03.0-ce"),
    ],
)
def test_it_orders_banner_versions(older, newer):
    assert v(older) < v(newer)
    assert v(newer) > v(older)
    assert v(older) != v(newer)


@pytest.mark.parametrize(
    "one, other",
    [
        ("1.0", "1.0.0"),
        ("v1.10.26-stable", "1.10.26"),
        ("18.09.1-ce", "18.09.1"),
        ("OpenSSH_8.9p1", "8.9p1"),
        ("nginx/1.18.0", "1.18.0"),
        ("redis_version:6.0.9", "6.0.9"),
        ("Geth/v1.10.17-stable-25c9b49f/linux-amd64/go1.18", "1.10.17"),
        ("2.4.49 (Unix)", "2.4.49"),
    ],
)
def test_it_reads_the_same_version_through_prefixes_and_labels(one, other):
    assert v(one) == v(other)
    assert hash(v(one)) == hash(v(other))


@pytest.mark.parametrize(
    "packaged, upstream, distro",
    [
        ("1.18.0-6ubuntu14.4", "1.18.0", "-6ubuntu14.4"),
        ("1.18.0-ubuntu", "1.18.0", "-ubuntu"),
        ("8.9p1 Ubuntu-3ubuntu0.1", "8.9p1", "ubuntu-3ubuntu0.1"),
        ("1:8.9p1-3ubuntu0.1", "8.9p1", "1:-3ubuntu0.1"),
        ("5:6.0.16-1+deb11u2", "6.0.16", "5:-1+deb11u2"),
        ("2.4.6-1.el7", "2.4.6", "-1.el7"),
    ],
)
def test_a_distribution_build_compares_equal_to_its_upstream_version(packaged, upstream, distro):
    parsed = v(packaged)
    assert parsed == v(upstream)
    assert parsed.upstream == upstream
    assert parsed.distro == distro
    assert parsed.is_distribution_build


def test_a_commit_hash_or_platform_is_not_a_distribution_build():
    parsed = v("Geth/v1.10.17-stable-25c9b49f/linux-amd64/go1.18")
    assert not parsed.is_distribution_build
    assert parsed.build == "25c9b49f/linux-amd64/go1.18"


def test_a_distribution_build_is_not_newer_than_the_next_upstream_release():
    assert v("1.18.0-6ubuntu14.4") < v("1.18.1")
    assert v("8.9p1 Ubuntu-3ubuntu0.10") < v("9.8p1")


def test_an_update_extends_its_base_version_but_a_further_number_does_not():
    assert v("7.2p2").extends(v("7.2"))
    assert v("7.2rc1").extends(v("7.2"))
    assert v("7.2").extends(v("7.2"))
    assert not v("7.2.1").extends(v("7.2"))
    assert not v("7.3").extends(v("7.2"))


@pytest.mark.parametrize("junk", ["", "   ", "abc", "unknown", "-", "²", None, 12, b"1.2"])
def test_junk_without_a_version_gives_none(junk):
    assert parse_version(junk) is None


@pytest.mark.parametrize("odd", ["1..2", "1.2.x", "~~1", "v2", "1:", "99999999999999999999999.1", "-1ubuntu"])
def test_odd_text_with_a_digit_still_gives_a_comparable_version(odd):
    parsed = parse_version(odd)
    assert parsed is not None
    assert (parsed < v("1.0")) or (parsed >= v("1.0"))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40), st.text(max_size=40), st.text(max_size=40))
def test_parse_version_never_raises_and_orders_totally(a, b, c):
    parsed = [p for p in (parse_version(a), parse_version(b), parse_version(c)) if p is not None]
    for x in parsed:
        assert x == x
        for y in parsed:
            assert (x < y) + (x == y) + (x > y) == 1
            for z in parsed:
                if x <= y and y <= z:
                    assert x <= z


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"v?[0-9]{1,3}(\.[0-9]{1,3}){0,3}(p[0-9]|[a-z]|-rc[0-9]|-beta|-[0-9]ubuntu[0-9.]{1,5})?", fullmatch=True))
def test_banner_shaped_versions_always_parse(text):
    assert isinstance(parse_version(text), Version)
