"""Version numbers as fingerprint scanners and NVD write them, made comparable.

Banners carry more than a version: ``8.9p1`` (OpenSSH portable patch level),
``1.18.0-6ubuntu14.4`` (a distribution package revision), ``v1.10.26-stable``
(Geth's release channel), ``7.0-rc2`` (a pre-release). :func:`parse_version` reduces
each to an ordering key:

- Dotted numbers compare numerically, and trailing zeros do not count
  (``1.0 == 1.0.0``; ``2.4.49 > 2.4.5``).
- A pre-release word orders before its release: ``dev``/``unstable`` < ``alpha``/``a1``
  < ``beta``/``b1`` < ``pre``/``preview`` < ``rc``; ``1.0rc1 < 1.0``.
- A trailing letter or patch mark orders after its release and before the next number:
  ``9.8 < 9.8p1 < 9.8p2 < 9.9``, ``1.1.1 < 1.1.1a < 1.1.1k``.
- ``stable``, ``release``, ``final``, ``ga`` and Docker's ``ce``/``ee`` say nothing
  about the order and are ignored.

Distribution revisions (``-6ubuntu14.4``, ``+deb11u1``, ``-1.el7``, an epoch ``1:``,
a packager's note after a space as in ``8.9p1 Ubuntu-3ubuntu0.1``) are kept in
:attr:`Version.distro`, other metadata (commit hashes, ``/linux-amd64``, ``(Unix)``)
in :attr:`Version.build`; neither **takes part in ordering or equality**: a
distribution build compares equal to the upstream version it packages. Distributions
backport fixes without changing the upstream number, so a revision can neither prove a
build vulnerable nor prove it fixed; the matcher reports such a hit with lower
confidence instead of pretending to know (see :mod:`scans.cve.cpe`).

Junk never raises: text without an ASCII digit gives ``None``; anything else gives a
:class:`Version` (unknown characters act as separators), so ordering is always total.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

# Ranks of the key elements: where two versions first differ, the kind of element
# decides before its value does.
_PRE, _END, _POST, _NUMBER = 0, 1, 2, 3

_PRE_WORDS = {
    "dev": 0,
    "snapshot": 0,
    "nightly": 0,
    "unstable": 0,
    "alpha": 1,
    "beta": 2,
    "pre": 3,
    "preview": 3,
    "rc": 4,
    "cr": 4,
}
# PEP 440 style short forms count as pre-releases only with a number: "3.0.0b1" is a
# beta, but OpenSSL's "1.1.1a" is a patch letter after 1.1.1.
_PRE_SHORT = {"a": 1, "b": 2, "c": 4}
_POST_SYNONYMS = {"patch": "p", "pl": "p", "post": "p"}
_NEUTRAL_WORDS = {"stable", "release", "final", "ga", "ce", "ee", "v"}

_TOKEN = re.compile(r"[0-9]+|[a-z]+")
_EPOCH = re.compile(r"^[0-9]+:(?=[0-9])")
_PREFIX = re.compile(r"^[^0-9]*?[/_ :=-](?=v?[0-9])")
_LABEL = re.compile(r"^([a-z]+)\.?([0-9]*)$")
_COMMIT = re.compile(r"^(?=[0-9]*[a-f])[0-9a-f]{7,40}$")
_DISTRO_WORD = re.compile(r"ubuntu|deb|el[0-9]|fc[0-9]|amzn|alpine|centos|rhel|red ?hat|suse|bpo|raspbian|photon|wolfi")

# Packagers whose builds carry backported fixes, as a banner or a version names them: the packager,
# the pattern of its package revision, the words that name it without a revision ("(Ubuntu)").
_PACKAGERS = (
    ("Ubuntu", re.compile(r"[0-9][\w.+~]*ubuntu[\w.+~]*", re.I), re.compile(r"\bubuntu\b", re.I)),
    ("Debian", re.compile(r"(?:[0-9][\w.~]*\+)?deb[0-9]+u[0-9]+[\w.~]*|(?<=debian-)[0-9][\w.+~]*", re.I),
     re.compile(r"\b(?:debian|raspbian)\b", re.I)),
    ("RHEL", re.compile(r"(?:[0-9][\w]*\.)*(?<![a-z])el[0-9]+(?:_[0-9]+)?\b", re.I),
     re.compile(r"\b(?:red ?hat(?: enterprise linux)?|rhel|centos|rocky|almalinux)\b", re.I)),
    ("Fedora", re.compile(r"(?:[0-9][\w]*\.)*(?<![a-z])fc[0-9]+\b", re.I), re.compile(r"\bfedora\b", re.I)),
    ("Amazon Linux", re.compile(r"(?:[0-9][\w]*\.)*amzn[0-9]+[\w.]*", re.I), re.compile(r"\bamazon linux\b", re.I)),
    ("SUSE", re.compile(r"[0-9][\w.]*\.suse[\w.]*", re.I), re.compile(r"\b(?:open)?suse\b", re.I)),
    ("FreeBSD", re.compile(r"(?<=freebsd-)[0-9]+", re.I), re.compile(r"\bfreebsd\b", re.I)),
)


@functools.total_ordering
@dataclass(frozen=True, slots=True, eq=False)
class Version:
    """A parsed version. Ordering and equality use :attr:`key` only."""

    text: str  # what was parsed, stripped
    upstream: str  # the part that takes part in ordering, e.g. "8.9p1", "7.0-rc2"
    distro: str = ""  # the packager's revision with its separators: "-6ubuntu14.4", "1:-3ubuntu0.1", "+deb11u1"
    build: str = ""  # other ignored metadata: a commit hash, a platform, "(unix)"
    key: tuple[tuple[int, int | str], ...] = field(default=(), repr=False)

    @property
    def is_distribution_build(self) -> bool:
        """True when a packager's revision is attached: fixes may have been backported."""
        return bool(self.distro)

    def extends(self, base: Version) -> bool:
        """Is this ``base`` itself or ``base`` with a patch level or pre-release added?

        ``7.2p2`` and ``7.2rc1`` extend ``7.2``; ``7.2.1`` does not. This is how a CPE
        with version ``7.2`` and update ANY is read.
        """
        stem = base.key[:-1]
        if self.key[: len(stem)] != stem:
            return False
        return self.key[len(stem)][0] != _NUMBER

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.key == other.key

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.key < other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __str__(self) -> str:
        return self.text


def distribution_build(*texts: str) -> str:
    """The distribution build a version or banner names, as a person reads it: ``Ubuntu 4ubuntu2.8``
    from ``OpenSSH_7.2p2 Ubuntu-4ubuntu2.8``, ``Debian 10+deb9u1``, ``RHEL 97.el7``, or the
    packager alone from a server token (``Apache/2.4.29 (Ubuntu)`` gives ``Ubuntu``); empty when
    none is named. The first text that names one wins (the version before the banner)."""
    for text in texts:
        if not text:
            continue
        for packager, revision, word in _PACKAGERS:
            found = revision.search(text)
            if found:
                return f"{packager} {found.group(0).strip('.+-~')}"
            named = word.search(text)
            if named:
                return named.group(0) if packager == "RHEL" else packager
    return ""


def parse_version(text: object) -> Version | None:
    """Parse a banner or NVD version; ``None`` when there is no version in it at all."""
    if not isinstance(text, str):
        return None
    return _parse_text(text)


@functools.lru_cache(maxsize=65536)
def _parse_text(text: str) -> Version | None:
    # Cached: catalog bounds and fleet versions repeat, and Version is immutable.
    cleaned = text.strip()
    if not cleaned:
        return None
    lowered = cleaned.lower()
    # Only ASCII digits: str.isdigit() accepts "²", which int() refuses.
    if not any("0" <= ch <= "9" for ch in lowered):
        return None
    upstream, distro, build = _split_distro(lowered)
    if not any("0" <= ch <= "9" for ch in upstream):
        # Nothing upstream to compare ("-1ubuntu"): fall back to the whole text.
        upstream, distro, build = lowered, "", ""
    return Version(text=cleaned, upstream=upstream, distro=distro, build=build, key=_key(upstream))


def _split_distro(text: str) -> tuple[str, str, str]:
    """Split ``text`` into upstream version, distribution revision and build metadata."""
    distro: list[str] = []
    build: list[str] = []
    head, sep, rest = text.partition(" ")
    text = _PREFIX.sub("", head, count=1)  # "openssh_8.9p1", "nginx/1.18.0"
    epoch = _EPOCH.match(text)
    if epoch:
        distro.append(epoch.group(0))
        text = text[epoch.end():]
    if text[:1] == "v":
        text = text[1:]
    text, slash, platform = text.partition("/")  # Geth's "/linux-amd64/go1.18"
    text, plus, metadata = text.partition("+")  # semver build metadata, Debian "+deb11u1"
    parts = re.split(r"[-~]", text)
    kept = [parts[0]]
    for index, part in enumerate(parts[1:], start=1):
        label = _LABEL.match(part)
        if label and label.group(1) in _NEUTRAL_WORDS and not label.group(2):
            continue
        if label and (label.group(1) in _PRE_WORDS or (label.group(1) in _PRE_SHORT and label.group(2))):
            kept.append(part)
            continue
        # A package revision ("6ubuntu14.4"), a vendor word ("ubuntu") or a commit
        # hash: from here on the text is not upstream's.
        suffix = "-".join(parts[index:])
        (build if _COMMIT.match(suffix) else distro).append("-" + suffix)
        break
    if plus:
        (distro if _DISTRO_WORD.search(metadata) else build).append("+" + metadata)
    if slash:
        build.append("/" + platform)
    if sep:
        # "8.9p1 Ubuntu-3ubuntu0.1": whatever follows the version is the packager's.
        (distro if _DISTRO_WORD.search(rest) else build).append(" " + rest.strip())
    # Pieces keep their separators, so "5:6.0.16-1+deb11u2" reads back as "5:-1+deb11u2".
    return "-".join(p for p in kept if p), "".join(distro).strip(), "".join(build).strip(" -+/")


def _key(upstream: str) -> tuple[tuple[int, int | str], ...]:
    tokens = _TOKEN.findall(upstream)
    release: list[int] = []
    while tokens and tokens[0].isdigit():
        release.append(int(tokens.pop(0)))
    while release and release[-1] == 0:
        release.pop()
    key: list[tuple[int, int | str]] = [(_NUMBER, n) for n in release]
    previous_was_number = bool(release)
    for index, token in enumerate(tokens):
        if token.isdigit():
            key.append((_NUMBER, int(token)))
            previous_was_number = True
            continue
        followed_by_number = index + 1 < len(tokens) and tokens[index + 1].isdigit()
        if token in _PRE_WORDS:
            key.append((_PRE, _PRE_WORDS[token]))
        elif token in _PRE_SHORT and followed_by_number and previous_was_number:
            key.append((_PRE, _PRE_SHORT[token]))
        elif token in _NEUTRAL_WORDS:
            pass
        else:
            key.append((_POST, _POST_SYNONYMS.get(token, token)))
        previous_was_number = False
    key.append((_END, 0))
    return tuple(key)
