"""Scanners and importers are plug-ins: one class per module, registered by its ``name``.

Each module registers its class with ``@register`` (its registry's ``register``). The
package's ``__init__`` imports every module by name, and importing any module of a package
imports that ``__init__`` first, so a registry is complete before a caller can reach it:
no dynamic imports, and a reader (or any tool) can follow every name to its class.

No Django here, like the scanners and importers themselves.
"""

from __future__ import annotations

from typing import TypeVar

_Plugin = TypeVar("_Plugin")


class Plugins(dict[str, type[_Plugin]]):
    """A registry: classes by name. ``kind`` names them in messages ("scanner"); ``unknown`` is
    the exception a lookup of a name nobody registered raises."""

    def __init__(self, kind: str, *, unknown: type[Exception]) -> None:
        super().__init__()
        self.kind = kind
        self.unknown = unknown

    def register(self, cls: type[_Plugin]) -> type[_Plugin]:
        """The class decorator; a name already taken by another class is a mistake."""
        if cls.name in self and self[cls.name] is not cls:
            raise ValueError(f"{self.kind} {cls.name!r} registered twice")
        self[cls.name] = cls
        return cls

    def create(self, name: str) -> _Plugin:
        """An instance of the class registered as ``name``."""
        try:
            cls = self[name]
        except KeyError:
            raise self.unknown(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self))}") from None
        return cls()
