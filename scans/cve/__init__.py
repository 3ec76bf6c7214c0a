"""The CVE catalog and its matcher.

- ``nvd``: NVD CVE API 2.0 files read; ``catalog``: their records stored, incrementally.
- ``nvd_client`` and ``nvd_sync``: the catalog kept current from the NVD API (``sync_cves``,
  daily on beat), page by page from a checkpoint; the feed's state recorded for files too.
- ``cpe`` and ``versions``: the names and version ranges the NVD writes, understood.
- ``match``: a product and version against the catalog's criteria.
- ``analysis``: the pipeline's analysis stage, services seen on ports to CVE candidates.
"""
