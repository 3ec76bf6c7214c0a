"""Named port sets: nmap's frequency-ordered top TCP ports, and the ports never scanned.

``TOP_1000`` (``top_ports.txt``) is nmap 7.93's ``nmap-services`` TCP list sorted by open frequency
(ties in file order); its first 100 are ``--top-ports 100``. Both were checked to be the
same sets nmap scans with ``--top-ports``. Order matters: scanning the likeliest
ports first finds services soonest when a budget runs out.
"""

from __future__ import annotations

from pathlib import Path

# Port 2024 belongs to the sandbox this runs in: no scan may probe or report it.
RESERVED_PORTS: frozenset[int] = frozenset({2024})


def _read_ports(path: Path) -> tuple[int, ...]:
    """The ports of a list file, in order: whitespace-separated numbers, ``#`` starting a comment."""
    text = path.read_text(encoding="ascii")
    return tuple(int(word) for line in text.splitlines() for word in line.partition("#")[0].split())


TOP_1000: tuple[int, ...] = _read_ports(Path(__file__).with_name("top_ports.txt"))

TOP_100: tuple[int, ...] = TOP_1000[:100]
ALL_PORTS: tuple[int, ...] = tuple(range(1, 65536))

NAMED_SETS: dict[str, tuple[int, ...]] = {"top100": TOP_100, "top1000": TOP_1000, "all": ALL_PORTS}


def parse_ports(spec: str | list[int] | tuple[int, ...] | None, *, default: str = "top1000") -> tuple[int, ...]:
    """Turn a set name, ``"22,80,8000-8100"``, a mix (``"top1000,6379"``) or a list into ports,
    in order, without duplicates.

    Reserved ports are dropped whatever was asked. A bad spec raises ValueError naming the part.
    """
    if spec is None or spec == "":
        spec = default
    if isinstance(spec, str) and spec.strip().lower() in NAMED_SETS:
        ports: list[int] | tuple[int, ...] = NAMED_SETS[spec.strip().lower()]
    elif isinstance(spec, str):
        ports = []
        for part in spec.replace(" ", "").split(","):
            if not part:
                continue
            if part.lower() in NAMED_SETS:
                ports.extend(NAMED_SETS[part.lower()])
                continue
            low, sep, high = part.partition("-")
            if not low.isdigit() or (sep and not high.isdigit()):
                raise ValueError(f"bad port spec part {part!r}: use a set name, N or N-M")
            first, last = int(low), int(high) if sep else int(low)
            if not 1 <= first <= last <= 65535:
                raise ValueError(f"bad port range {part!r}: ports are 1-65535, low to high")
            ports.extend(range(first, last + 1))
    else:
        ports = list(spec)
        bad = [p for p in ports if not isinstance(p, int) or not 1 <= p <= 65535]
        if bad:
            raise ValueError(f"bad port(s) {bad[:5]}: ports are integers 1-65535")
    return tuple(p for p in dict.fromkeys(ports) if p not in RESERVED_PORTS)
