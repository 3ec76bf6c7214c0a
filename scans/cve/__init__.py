"""The CVE catalog and its matcher.

- ``nvd``: NVD CVE API 2.0 files read; ``catalog``: their records stored, incrementally.
- ``cpe`` and ``versions``: the names and version ranges the NVD writes, understood.
- ``match``: a product and version against the catalog's criteria.
- ``analysis``: the pipeline's analysis stage, services seen on ports to CVE candidates.
"""
