"""CPE 2.3 names and NVD applicability statements, matched against what a scanner saw.

A :class:`Cpe` keeps each attribute in its *formatted string* form (``node\\.js``
unquoted to ``node.js``, ``\\*`` for a literal star): that form is lossless, it is what
NVD publishes and what the catalog stores, and it keeps the logical values apart
from literals: ``*`` is ANY, ``-`` is NA, while a literal star or dash stays escaped.
Attributes are lower-cased (CPE matching is case-insensitive) and escapes are
normalised, so two spellings of one name compare equal.

NVD describes what a CVE affects as *configurations*: nodes of ``cpeMatch``
criteria joined by AND/OR, optionally negated, each criterion a CPE with an optional
version range. A scanner sees one product on one port and nothing of the platform, so
a configuration is evaluated in three-valued logic: a criterion about the observed
product is true or false, one about anything else (an operating system, a hardware
model) is *unknown*. A configuration that is true matches; one that stays unknown only
because of a platform requirement matches with lower confidence and says which
platform it needs. A hit is only ever produced by a ``vulnerable`` criterion: a
product that is merely the platform for someone else's bug is not reported.

Confidence, 0–1, and its basis (``scans.findings.candidates.BASES``): 1.0 for a version
observed exactly (``exact``) or within a range (``range``); 0.7 when NVD lists every version
of the product and 0.5 for NVD's "no version" (``-``), where the product's name is all the
match rests on (``banner``); times 0.6 when an unobserved platform is required
(``condition``), or 0.85 when the distribution the service names suggests that platform;
times 0.5 when the version or the banner names a distribution build (``backport``): its
packager may have backported the fix without changing the upstream number (see
:mod:`scans.cve.versions`), so such a hit stays below the default threshold of 0.6.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from scans.cve.versions import Version, parse_version

ANY = "*"
NA = "-"
ATTRIBUTES = (
    "part",
    "vendor",
    "product",
    "version",
    "update",
    "edition",
    "language",
    "sw_edition",
    "target_sw",
    "target_hw",
    "other",
)
PARTS = ("a", "o", "h", ANY, NA)

CONFIDENCE_EXACT = 1.0
CONFIDENCE_ALL_VERSIONS = 0.7
CONFIDENCE_NO_VERSION = 0.5
FACTOR_DISTRIBUTION_BUILD = 0.5
FACTOR_PLATFORM_UNKNOWN = 0.6
FACTOR_PLATFORM_SUGGESTED = 0.85

# Fingerprinted product names (lower-cased, separators folded to one space) to the
# NVD vendor:product pairs that name the same software. NVD renames vendors over
# time (nginx:nginx became f5:nginx in 2022; Docker Engine is docker:docker,
# docker:engine and mobyproject:moby), so a name maps to every pair in use.
PRODUCT_ALIASES: dict[str, tuple[tuple[str, str], ...]] = {
    "openssh": (("openbsd", "openssh"),),
    "apache httpd": (("apache", "http_server"),),
    "apache http server": (("apache", "http_server"),),
    "apache": (("apache", "http_server"),),
    "httpd": (("apache", "http_server"),),
    "nginx": (("f5", "nginx"), ("nginx", "nginx")),
    "redis": (("redis", "redis"),),
    "redis key value store": (("redis", "redis"),),
    "postgresql": (("postgresql", "postgresql"),),
    "postgresql db": (("postgresql", "postgresql"),),
    "postgres": (("postgresql", "postgresql"),),
    "mysql": (("oracle", "mysql"), ("oracle", "mysql_server"), ("mysql", "mysql")),
    "mysql server": (("oracle", "mysql"), ("oracle", "mysql_server"), ("mysql", "mysql")),
    "memcached": (("memcached", "memcached"),),
    "docker": (("docker", "docker"), ("docker", "engine"), ("mobyproject", "moby")),
    "docker engine": (("docker", "docker"), ("docker", "engine"), ("mobyproject", "moby")),
    "dockerd": (("docker", "docker"), ("docker", "engine"), ("mobyproject", "moby")),
    "moby": (("docker", "docker"), ("docker", "engine"), ("mobyproject", "moby")),
    "geth": (("ethereum", "go_ethereum"),),
    "go ethereum": (("ethereum", "go_ethereum"),),
}

# Words in a version's distribution revision to the NVD operating system they imply.
DISTRIBUTION_PLATFORMS: dict[str, tuple[str, str]] = {
    "ubuntu": ("canonical", "ubuntu_linux"),
    "deb": ("debian", "debian_linux"),
    "el": ("redhat", "enterprise_linux"),
    "fc": ("fedoraproject", "fedora"),
    "amzn": ("amazon", "linux"),
    "suse": ("suse", "linux_enterprise_server"),
}


class CpeError(ValueError):
    """A string is not a CPE name."""


@dataclass(frozen=True, slots=True)
class Cpe:
    """A CPE 2.3 name; every attribute in canonical formatted-string form."""

    part: str = ANY
    vendor: str = ANY
    product: str = ANY
    version: str = ANY
    update: str = ANY
    edition: str = ANY
    language: str = ANY
    sw_edition: str = ANY
    target_sw: str = ANY
    target_hw: str = ANY
    other: str = ANY

    @classmethod
    def parse(cls, text: str) -> Cpe:
        """Parse a CPE 2.3 formatted string (``cpe:2.3:...``) or a 2.2 URI (``cpe:/a:...``).

        Trailing attributes may be left out (they are ANY): scanners write short names.
        """
        return _parse(text)

    @classmethod
    def build(cls, vendor: str, product: str, version: str = "", *, part: str = "a", update: str = "") -> Cpe:
        """A CPE from literal values; an empty value is ANY."""
        return cls(
            part=part,
            vendor=_escape(vendor),
            product=_escape(product),
            version=_escape(version),
            update=_escape(update),
        )

    def __str__(self) -> str:
        return "cpe:2.3:" + ":".join(getattr(self, name) for name in ATTRIBUTES)

    def literal(self, attribute: str) -> str | None:
        """The unescaped value of ``attribute``; ``None`` for ANY and NA."""
        value = getattr(self, attribute)
        if value in (ANY, NA):
            return None
        return _unescape(value)

    @property
    def vendor_product(self) -> tuple[str, str] | None:
        """``(vendor, product)`` when both are plain literals, the key of the CVE index."""
        if _has_wildcard(self.vendor) or _has_wildcard(self.product):
            return None
        vendor, product = self.literal("vendor"), self.literal("product")
        if vendor is None or product is None:
            return None
        return vendor, product

    def matches(self, other: Cpe) -> bool:
        """True when this name, read as a pattern, covers ``other`` attribute by attribute."""
        return all(attribute_matches(getattr(self, name), getattr(other, name)) for name in ATTRIBUTES)


def attribute_matches(source: str, target: str) -> bool:
    """CPE name matching of one attribute: may ``source`` (a criterion) be ``target``?

    ANY matches everything, NA only NA; a literal with ``*``/``?`` wildcards matches
    literals by pattern. A criterion literal does not match a target's ANY: an
    observation that does not know the value cannot be claimed to have it.
    """
    if source == ANY:
        return True
    if source == NA or target in (ANY, NA):
        return source == target
    if not _has_wildcard(source):
        return source == target
    return _pattern(source).fullmatch(_unescape(target)) is not None


def nvd_products(product: str = "", cpe: Cpe | str | None = None) -> tuple[tuple[str, str], ...]:
    """Every NVD ``(vendor, product)`` an observation may be known as, most specific first."""
    pairs: list[tuple[str, str]] = []
    if isinstance(cpe, str):
        cpe = try_parse_cpe(cpe) if cpe else None
    if cpe is not None and cpe.vendor_product:
        pairs.append(cpe.vendor_product)
        pairs.extend(PRODUCT_ALIASES.get(_alias_key(cpe.vendor_product[1]), ()))
    if product:
        pairs.extend(PRODUCT_ALIASES.get(_alias_key(product), ()))
    for pair in list(pairs):  # a CPE pair NVD has since renamed: add its siblings
        for group in PRODUCT_ALIASES.values():
            if pair in group:
                pairs.extend(group)
    return tuple(dict.fromkeys(pairs))


def platforms_suggested_by(distribution: str) -> frozenset[tuple[str, str]]:
    """Operating systems a distribution build names (``Ubuntu 3ubuntu0.1`` → Ubuntu)."""
    if not distribution:
        return frozenset()
    words = re.findall(r"[a-z]+", distribution.lower())
    return frozenset(
        platform for word in words for prefix, platform in DISTRIBUTION_PLATFORMS.items() if word.startswith(prefix)
    )


def try_parse_cpe(text: str) -> Cpe | None:
    try:
        return _parse(text)
    except CpeError:
        return None


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether an observation matches, how sure we are, and why, in one sentence."""

    matched: bool
    confidence: float
    reason: str
    criteria: str = ""  # the CPE criterion that decided
    basis: str = ""  # what the confidence rests on: one of scans.findings.candidates.BASES


@dataclass(frozen=True, slots=True)
class Observed:
    """The product a scanner saw, as the matcher needs it."""

    products: tuple[tuple[str, str], ...]  # NVD (vendor, product) pairs, see nvd_products()
    version: Version | None
    platforms: frozenset[tuple[str, str]] = frozenset()  # operating systems the version suggests
    cpe: Cpe | None = None  # the scanner's CPE, when it gave one: its editions and targets count too
    distribution: str = ""  # the distribution build the version or banner names: "Ubuntu 4ubuntu2.8"
    keys: frozenset[tuple[str, str]] = field(default=frozenset(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The products in formatted-string form, so a criterion compares strings only.
        object.__setattr__(self, "keys", frozenset((_escape(v), _escape(p)) for v, p in self.products))


@dataclass(frozen=True, slots=True)
class MatchCriterion:
    """One NVD ``cpeMatch`` entry: a CPE pattern and an optional version range."""

    criteria: Cpe
    vulnerable: bool = True
    version_start_including: str = ""
    version_start_excluding: str = ""
    version_end_including: str = ""
    version_end_excluding: str = ""
    match_criteria_id: str = ""
    # Set when the same node also lists this version with explicit updates ("7.1:*"
    # beside "7.1:p1"): NVD then means the bare release by "*", not "any update".
    bare_release: bool = False
    _bounds: tuple[Version | None, ...] = field(default=(), init=False, repr=False, compare=False)
    _exact: Version | None = field(default=None, init=False, repr=False, compare=False)
    _plain: bool = field(default=True, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Parsed once here: a catalog criterion is evaluated for every service scanned.
        bounds = tuple(
            parse_version(text) if text else None
            for text in (
                self.version_start_including,
                self.version_start_excluding,
                self.version_end_including,
                self.version_end_excluding,
            )
        )
        object.__setattr__(self, "_bounds", bounds)
        exact = None
        version = self.criteria.literal("version")
        if version is not None and not _has_wildcard(self.criteria.version):
            update = self.criteria.literal("update") or ""
            exact = parse_version(version + update if update else version)
        object.__setattr__(self, "_exact", exact)
        plain = not (_has_wildcard(self.criteria.vendor) or _has_wildcard(self.criteria.product))
        object.__setattr__(self, "_plain", plain and ANY not in (self.criteria.vendor, self.criteria.product))

    @classmethod
    def from_nvd(cls, data: Mapping[str, Any]) -> MatchCriterion:
        return cls(
            criteria=Cpe.parse(data["criteria"]),
            vulnerable=bool(data.get("vulnerable", True)),
            version_start_including=data.get("versionStartIncluding") or "",
            version_start_excluding=data.get("versionStartExcluding") or "",
            version_end_including=data.get("versionEndIncluding") or "",
            version_end_excluding=data.get("versionEndExcluding") or "",
            match_criteria_id=data.get("matchCriteriaId") or "",
        )

    def to_nvd(self) -> dict[str, Any]:
        data: dict[str, Any] = {"vulnerable": self.vulnerable, "criteria": str(self.criteria)}
        for key, value in (
            ("versionStartIncluding", self.version_start_including),
            ("versionStartExcluding", self.version_start_excluding),
            ("versionEndIncluding", self.version_end_including),
            ("versionEndExcluding", self.version_end_excluding),
            ("matchCriteriaId", self.match_criteria_id),
        ):
            if value:
                data[key] = value
        return data

    @property
    def has_range(self) -> bool:
        return any(
            (
                self.version_start_including,
                self.version_start_excluding,
                self.version_end_including,
                self.version_end_excluding,
            )
        )

    @property
    def interval(self) -> str:
        """The range in interval notation: ``[8.6, 9.8)``."""
        if self.version_start_including:
            left = f"[{self.version_start_including}"
        elif self.version_start_excluding:
            left = f"({self.version_start_excluding}"
        else:
            left = "(-inf"
        if self.version_end_including:
            right = f"{self.version_end_including}]"
        elif self.version_end_excluding:
            right = f"{self.version_end_excluding})"
        else:
            right = "+inf)"
        return f"{left}, {right}"

    def is_about(self, observed: Observed) -> bool:
        """Is this criterion about the observed product (rather than its platform)?"""
        if self._plain:
            return (self.criteria.vendor, self.criteria.product) in observed.keys
        return any(
            attribute_matches(self.criteria.vendor, vendor) and attribute_matches(self.criteria.product, product)
            for vendor, product in observed.keys
        )

    def agrees_with(self, observed: Cpe) -> bool:
        """Do the attributes besides vendor, product and version allow ``observed``?

        Only what the observation states counts: its ANY says nothing either way.
        """
        for name in ("edition", "language", "sw_edition", "target_sw", "target_hw", "other"):
            value = getattr(observed, name)
            if value != ANY and not attribute_matches(getattr(self.criteria, name), value):
                return False
        return True

    def evaluate(self, version: Version | None, name: str = "") -> Verdict:
        """Does ``version`` of the criterion's product satisfy it? (The product is assumed.)"""
        name = name or self.criteria.literal("product") or "product"
        criteria = str(self.criteria)
        if version is None:
            return Verdict(False, 0.0, f"{name} version is unknown", criteria)
        shown = version.upstream
        if self.has_range:
            start_in, start_ex, end_in, end_ex = self._bounds
            if any(text and bound is None for bound, text in zip(self._bounds, self._bound_texts())):
                # NVD wrote a bound with no version in it: claim nothing rather than guess.
                return Verdict(False, 0.0, f"{name} range {self.interval} cannot be read", criteria)
            inside = (
                (start_in is None or version >= start_in)
                and (start_ex is None or version > start_ex)
                and (end_in is None or version <= end_in)
                and (end_ex is None or version < end_ex)
            )
            word = "within" if inside else "outside"
            return Verdict(inside, CONFIDENCE_EXACT if inside else 0.0, f"{name} {shown} is {word} {self.interval}",
                           criteria, "range")
        if self.criteria.version == ANY:
            return Verdict(True, CONFIDENCE_ALL_VERSIONS, f"every version of {name} is listed as affected", criteria,
                           "banner")
        if self.criteria.version == NA:
            return Verdict(True, CONFIDENCE_NO_VERSION, f"{name} is listed without a version", criteria, "banner")
        if _has_wildcard(self.criteria.version):
            listed = self.criteria.literal("version") or ""
            inside = _pattern(self.criteria.version).fullmatch(version.upstream) is not None
            word = "matches" if inside else "does not match"
            return Verdict(inside, CONFIDENCE_EXACT if inside else 0.0, f"{name} {shown} {word} {listed}", criteria,
                           "range")
        inside = self._matches_exact(version)
        listed = self._listed_version()
        said = f"is listed as affected ({listed})" if inside else f"is not the listed {listed}"
        return Verdict(inside, CONFIDENCE_EXACT if inside else 0.0, f"{name} {shown} {said}", criteria, "exact")

    def _bound_texts(self) -> tuple[str, str, str, str]:
        return (
            self.version_start_including,
            self.version_start_excluding,
            self.version_end_including,
            self.version_end_excluding,
        )

    def _listed_version(self) -> str:
        version = self.criteria.literal("version") or ""
        update = self.criteria.literal("update")
        return f"{version} {update}" if update else version

    def _matches_exact(self, version: Version) -> bool:
        if self._exact is None:
            return False
        if self.criteria.update != ANY or self.bare_release:
            # "4.4:-" is 4.4 with no patch level, "8.5:p1" is 8.5p1: compare whole versions.
            return version == self._exact
        # "7.2:*" is 7.2 with any update: 7.2, 7.2p1, 7.2p2, 7.2rc1, but not 7.2.1.
        return version.extends(self._exact)


@dataclass(frozen=True, slots=True)
class _Junction:
    """Parts joined by one operator (OR when NVD leaves it out); ``negate`` inverts the result."""

    operator: str = "OR"
    negate: bool = False

    def join(self, states: list[_State]) -> _State:
        """The parts' states joined in three-valued logic, then inverted when ``negate`` says so."""
        return _negate(_combine(self.operator, states), self.negate)


def _junction_from_nvd(data: Mapping[str, Any]) -> dict[str, Any]:
    return {"operator": str(data.get("operator") or "OR").upper(), "negate": bool(data.get("negate", False))}


@dataclass(frozen=True, slots=True)
class ConfigNode(_Junction):
    """A list of criteria joined by one operator."""

    matches: tuple[MatchCriterion, ...] = ()

    @classmethod
    def from_nvd(cls, data: Mapping[str, Any]) -> ConfigNode:
        matches = [MatchCriterion.from_nvd(m) for m in data.get("cpeMatch") or ()]
        with_update = {
            (m.criteria.vendor, m.criteria.product, m.criteria.version)
            for m in matches
            if m.criteria.update not in (ANY, NA)
        }
        matches = [
            dataclasses.replace(m, bare_release=True)
            if m.criteria.update == ANY
            and not m.has_range
            and (m.criteria.vendor, m.criteria.product, m.criteria.version) in with_update
            else m
            for m in matches
        ]
        return cls(matches=tuple(matches), **_junction_from_nvd(data))

    def to_nvd(self) -> dict[str, Any]:
        return {"operator": self.operator, "negate": self.negate, "cpeMatch": [m.to_nvd() for m in self.matches]}


@dataclass(frozen=True, slots=True)
class Configuration(_Junction):
    """One NVD configuration: nodes joined by one operator."""

    nodes: tuple[ConfigNode, ...] = ()

    @classmethod
    def from_nvd(cls, data: Mapping[str, Any]) -> Configuration:
        return cls(nodes=tuple(ConfigNode.from_nvd(n) for n in data.get("nodes") or ()), **_junction_from_nvd(data))

    def to_nvd(self) -> dict[str, Any]:
        data: dict[str, Any] = {"nodes": [n.to_nvd() for n in self.nodes]}
        if self.operator != "OR" or self.negate:
            data["operator"] = self.operator
            data["negate"] = self.negate
        return data

    def criteria(self) -> Iterable[MatchCriterion]:
        for node in self.nodes:
            yield from node.matches

    def evaluate(self, observed: Observed) -> Verdict:
        """Match ``observed`` against this configuration (see the module docstring)."""
        hits: list[Verdict] = []
        platform_needs: list[MatchCriterion] = []
        suggested = [False]

        def criterion_state(criterion: MatchCriterion) -> _State:
            if criterion.is_about(observed):
                if observed.cpe is not None and not criterion.agrees_with(observed.cpe):
                    return _FALSE  # e.g. NGINX Plus criteria against an observed open-source build
                verdict = criterion.evaluate(observed.version)
                if verdict.matched and criterion.vulnerable:
                    hits.append(verdict)
                return _TRUE if verdict.matched else _FALSE
            vendor_product = criterion.criteria.vendor_product
            if vendor_product in observed.platforms:
                suggested[0] = True
                return _TRUE
            platform_needs.append(criterion)
            return _UNKNOWN

        state = self.join([node.join([criterion_state(c) for c in node.matches]) for node in self.nodes])
        if not hits or state is _FALSE:
            return Verdict(False, 0.0, "no vulnerable criterion matches")
        best = max(hits, key=lambda v: v.confidence)
        if state is _TRUE and suggested[0]:
            best = Verdict(True, best.confidence * FACTOR_PLATFORM_SUGGESTED,
                           f"{best.reason}; the platform it needs is suggested by the version", best.criteria,
                           best.basis)
        elif state is not _TRUE:
            needs = _describe_platforms(platform_needs)
            best = Verdict(True, best.confidence * FACTOR_PLATFORM_UNKNOWN,
                           f"{best.reason}; only when running on {needs}, which was not observed", best.criteria,
                           "condition")
        if observed.distribution:
            # An unobserved condition stays the basis: it is the larger doubt.
            best = Verdict(True, best.confidence * FACTOR_DISTRIBUTION_BUILD,
                           f"{best.reason}; a distribution build ({observed.distribution}) may carry backported fixes",
                           best.criteria, best.basis if best.basis == "condition" else "backport")
        return best


class _State:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_TRUE, _FALSE, _UNKNOWN = _State("true"), _State("false"), _State("unknown")


def _combine(operator: str, states: list[_State]) -> _State:
    """Kleene's three-valued AND/OR: an unknown platform neither proves nor refutes."""
    if not states:
        return _UNKNOWN
    if operator == "AND":
        if _FALSE in states:
            return _FALSE
        return _TRUE if all(s is _TRUE for s in states) else _UNKNOWN
    if _TRUE in states:
        return _TRUE
    return _FALSE if all(s is _FALSE for s in states) else _UNKNOWN


def _negate(state: _State, negate: bool) -> _State:
    if not negate or state is _UNKNOWN:
        return state
    return _FALSE if state is _TRUE else _TRUE


def _describe_platforms(criteria: list[MatchCriterion]) -> str:
    names: list[str] = []
    for criterion in criteria:
        product = criterion.criteria.literal("product") or "any product"
        version = criterion.criteria.literal("version")
        name = f"{product} {version}" if version else product
        if name not in names:
            names.append(name)
    if len(names) > 3:
        return ", ".join(names[:3]) + f" or {len(names) - 3} more"
    return " or ".join(names)


def _alias_key(name: str) -> str:
    return re.sub(r"[\s_\-/]+", " ", name.lower()).strip()


# --- Formatted-string syntax -------------------------------------------------------

_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.-")


def _parse(text: str) -> Cpe:
    if not isinstance(text, str):
        raise CpeError(f"a CPE name is a string, not {type(text).__name__}")
    return _parse_text(text)


# NVD repeats the same few criteria strings across thousands of CVEs; Cpe is frozen,
# so one parsed instance can be shared (halves the time to read a full dump).
@functools.lru_cache(maxsize=65536)
def _parse_text(text: str) -> Cpe:
    stripped = text.strip()
    lowered = stripped.lower()
    if lowered.startswith("cpe:/"):
        return _parse_uri(stripped)
    if not lowered.startswith("cpe:2.3:"):
        raise CpeError(f"{text!r} is not a CPE 2.3 name: it must start with 'cpe:2.3:'")
    components = _split(stripped[len("cpe:2.3:"):], text)
    if len(components) > len(ATTRIBUTES):
        raise CpeError(f"{text!r} has {len(components)} attributes, a CPE 2.3 name has {len(ATTRIBUTES)}")
    if len(components) < 3:
        raise CpeError(f"{text!r} names no product: part, vendor and product are required")
    values = [_canonical(c, text) for c in components]
    values += [ANY] * (len(ATTRIBUTES) - len(values))
    if values[0] not in PARTS:
        raise CpeError(f"{text!r} has part {values[0]!r}; it must be a, o or h")
    return Cpe(*values)


def _split(body: str, text: str) -> list[list[tuple[str, bool]]]:
    """Split on unescaped colons into components of (character, was-escaped) pairs."""
    components: list[list[tuple[str, bool]]] = [[]]
    chars = iter(body)
    for ch in chars:
        if ch == "\\":
            escaped = next(chars, None)
            if escaped is None:
                raise CpeError(f"{text!r} ends with a lone backslash")
            components[-1].append((escaped, True))
        elif ch == ":":
            components.append([])
        else:
            components[-1].append((ch, False))
    return components


def _canonical(component: list[tuple[str, bool]], text: str) -> str:
    if not component:
        raise CpeError(f"{text!r} has an empty attribute; use * for ANY")
    for ch, _ in component:
        if not ("!" <= ch <= "~"):
            raise CpeError(f"{text!r} contains {ch!r}; CPE names are printable ASCII without spaces")
    if len(component) == 1 and not component[0][1] and component[0][0] in (ANY, NA):
        return component[0][0]
    out = []
    for ch, escaped in component:
        ch = ch.lower()
        if not escaped and ch in "*?":
            out.append(ch)  # a wildcard
        elif ch in _PLAIN:
            out.append(ch)
        else:
            out.append("\\" + ch)
    value = "".join(out)
    return "\\-" if value == "-" else value


def _escape(literal: str) -> str:
    """Quote a literal value for a formatted string; empty means ANY."""
    if not literal:
        return ANY
    value = "".join(ch if ch in _PLAIN else "\\" + ch for ch in literal.lower())
    return "\\-" if value == "-" else value


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def _has_wildcard(value: str) -> bool:
    if value in (ANY, NA):
        return False
    return re.search(r"(?<!\\)(?:\\\\)*[*?]", value) is not None


@functools.lru_cache(maxsize=4096)
def _pattern(value: str) -> re.Pattern[str]:
    parts = []
    for escaped, ch in re.findall(r"(\\)?(.)", value):
        if not escaped and ch == "*":
            parts.append(".*")
        elif not escaped and ch == "?":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), re.DOTALL)


def _parse_uri(text: str) -> Cpe:
    """CPE 2.2 URIs (``cpe:/a:openbsd:openssh:8.9p1``), as nmap writes them."""
    fields = text[len("cpe:/"):].split(":")
    if len(fields) > 7:
        raise CpeError(f"{text!r} has {len(fields)} attributes, a CPE 2.2 URI has at most 7")
    values = []
    for raw in fields:
        literal = urllib.parse.unquote(raw)
        if literal in ("", "*"):
            values.append(ANY)
        elif literal == "-":
            values.append(NA)
        else:
            values.append(_canonical([(ch, True) for ch in literal], text))
    if len(values) < 3:
        raise CpeError(f"{text!r} names no product: part, vendor and product are required")
    values += [ANY] * (len(ATTRIBUTES) - len(values))
    if values[0] not in PARTS:
        raise CpeError(f"{text!r} has part {values[0]!r}; it must be a, o or h")
    return Cpe(*values)
