"""Real services on loopback addresses, for tests, benchmarks and the demo.

Every 127.x.y.z address is a distinct host on Linux, so a lab can stand up
hundreds of "nodes", each with a few services, without touching any other network.
"""
from scans.lab.base import Lab, LabService

__all__ = ["Lab", "LabService"]
