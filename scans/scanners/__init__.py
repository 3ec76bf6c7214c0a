"""Built-in network scanners; each module registers one scanner in ``base.REGISTRY``.

Every scanner module is imported below, by name, so the registry is complete once this
package is imported and a reader (or any tool) can follow it: no dynamic imports. A new
scanner is one more name on that line.
"""
from scans.scanners.base import (
    REGISTRY,
    ScanContext,
    Scanner,
    ScannerError,
    ScannerUnavailable,
    Target,
    get_scanner,
    load_all,
    register,
)

__all__ = ["REGISTRY", "Scanner", "ScanContext", "ScannerError", "ScannerUnavailable", "Target", "get_scanner", "load_all", "register"]

from scans.scanners import exposure, fingerprint, http, nmap, portscan, tls  # noqa: E402,F401  (register themselves)
