"""Built-in network scanners; each module registers one scanner in ``base.REGISTRY``."""
from scans.scanners.base import REGISTRY, Scanner, ScanContext, ScannerError, ScannerUnavailable, Target, get_scanner, load_all, register

__all__ = ["REGISTRY", "Scanner", "ScanContext", "ScannerError", "ScannerUnavailable", "Target", "get_scanner", "load_all", "register"]
