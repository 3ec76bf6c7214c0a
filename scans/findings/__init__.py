"""The findings engine: what a scanner or an imported file said, made into one de-duplicated set.

- ``candidates``: the shape every scanner and importer reports in (``FindingCandidate``).
- ``normalization``: a candidate's stored values and its fingerprint, the key that de-duplicates.
- ``lifecycle``: new, unchanged, updated, reopened, fixed, in bulk, with the findings' history.
- ``imports`` and ``import_requests``: a third-party file, from the command line or the API.
- ``scoring``: node and organization scores from the open findings.
- ``triage``: what people decide about a finding, one at a time or in bulk.
"""
