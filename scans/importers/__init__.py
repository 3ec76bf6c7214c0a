"""Third-party results importers; each format module registers one importer in ``base.REGISTRY``.

Every format module is imported here, by name, so the registry is complete once this package
is imported (no dynamic imports). A new format is one more name on this line.
"""

from scans.importers import nmap, nuclei, openvas, sarif, sslyze, trivy  # noqa: F401  (register themselves)
