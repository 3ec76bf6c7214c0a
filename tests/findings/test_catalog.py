"""The CVE catalog: import_cves reads NVD 2.0 files into CveRecord and its product index."""

from __future__ import annotations

import copy
import gzip
import json

import pytest
from django.core.management import CommandError, call_command

from scans.cve.catalog import CVE_FIXTURE, cve_catalog_import
from scans.models import CveProduct, CveRecord


def nvd_document(*cves: dict) -> dict:
    return {"resultsPerPage": len(cves), "startIndex": 0, "totalResults": len(cves), "format": "NVD_CVE",
            "version": "2.0", "timestamp": "2026-06-18T00:00:00.000", "vulnerabilities": [{"cve": c} for c in cves]}


@pytest.fixture
def fixture_cves() -> list[dict]:
    return [v["cve"] for v in json.loads(CVE_FIXTURE.read_text())["vulnerabilities"]]


def cve(fixture_cves, cve_id: str) -> dict:
    return copy.deepcopy(next(c for c in fixture_cves if c["id"] == cve_id))


def test_it_imports_the_fixture_and_prints_counts(db, capsys):
    call_command("import_cves", str(CVE_FIXTURE))

    assert capsys.readouterr().out.strip() == "CVE records: 35 created, 0 updated, 0 unchanged"
    assert CveRecord.objects.count() == 35


def test_it_keeps_the_preferred_cvss_cwes_references_and_configurations(db):
    cve_catalog_import(paths=[CVE_FIXTURE])

    record = CveRecord.objects.get(cve_id="CVE-2024-6387")
    assert (str(record.cvss_score), record.cvss_version, record.severity) == ("8.1", "3.1", "high")
    assert record.cvss_vector == "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H"
    assert record.cwe_ids == ["CWE-362", "CWE-364"]
    assert record.description.startswith("A security regression")
    assert record.references and all(r.startswith("http") for r in record.references)
    assert record.published is not None and record.last_modified is not None
    assert record.configurations[0]["nodes"][0]["cpeMatch"]


def test_it_indexes_the_products_of_vulnerable_criteria_only(db):
    cve_catalog_import(paths=[CVE_FIXTURE])

    products = set(CveProduct.objects.filter(cve__cve_id="CVE-2023-48795").values_list("vendor", "product"))
    assert ("openbsd", "openssh") in products
    # CVE-2022-0543 is Redis on Debian/Ubuntu: the platforms are not vulnerable criteria.
    redis = set(CveProduct.objects.filter(cve__cve_id="CVE-2022-0543").values_list("vendor", "product"))
    assert redis == {("redis", "redis")}


def test_a_second_import_of_the_same_file_changes_nothing(db, capsys):
    call_command("import_cves", str(CVE_FIXTURE))
    products = CveProduct.objects.count()

    call_command("import_cves", str(CVE_FIXTURE))

    assert capsys.readouterr().out.strip().splitlines()[-1] == "CVE records: 0 created, 0 updated, 35 unchanged"
    assert CveProduct.objects.count() == products


def test_a_newer_revision_updates_the_record_and_rewrites_its_products(db, tmp_path, fixture_cves):
    cve_catalog_import(paths=[CVE_FIXTURE])
    revised = cve(fixture_cves, "CVE-2021-23017")
    revised["lastModified"] = "2030-01-01T00:00:00.000"
    revised["descriptions"] = [{"lang": "en", "value": "Revised."}]
    revised["configurations"] = [{"nodes": [{"operator": "OR", "negate": False, "cpeMatch": [
        {"vulnerable": True, "criteria": "cpe:2.3:a:nginx:nginx:*:*:*:*:*:*:*:*", "versionEndExcluding": "1.20.1"}]}]}]
    path = tmp_path / "revised.json"
    path.write_text(json.dumps(nvd_document(revised)))

    counts = cve_catalog_import(paths=[path])

    assert (counts.created, counts.updated, counts.unchanged) == (0, 1, 0)
    record = CveRecord.objects.get(cve_id="CVE-2021-23017")
    assert record.description == "Revised."
    assert set(record.products.values_list("vendor", "product")) == {("nginx", "nginx")}


def test_an_older_revision_does_not_overwrite_a_newer_one(db, tmp_path, fixture_cves):
    cve_catalog_import(paths=[CVE_FIXTURE])
    older = cve(fixture_cves, "CVE-2021-23017")
    older["lastModified"] = "2001-01-01T00:00:00.000"
    older["descriptions"] = [{"lang": "en", "value": "Stale."}]
    path = tmp_path / "older.json"
    path.write_text(json.dumps(nvd_document(older)))

    counts = cve_catalog_import(paths=[path])

    assert counts.unchanged == 1
    assert CveRecord.objects.get(cve_id="CVE-2021-23017").description != "Stale."


def test_it_reads_gzip_files(db, tmp_path):
    path = tmp_path / "nvd.json.gz"
    path.write_bytes(gzip.compress(CVE_FIXTURE.read_bytes()))

    assert cve_catalog_import(paths=[path]).created == 35


def test_a_rejected_cve_is_kept_but_never_indexed(db, tmp_path, fixture_cves):
    cve_catalog_import(paths=[CVE_FIXTURE])
    rejected = cve(fixture_cves, "CVE-2019-20372")
    rejected["vulnStatus"] = "Rejected"
    rejected["lastModified"] = "2030-01-01T00:00:00.000"
    path = tmp_path / "rejected.json"
    path.write_text(json.dumps(nvd_document(rejected)))

    counts = cve_catalog_import(paths=[path])

    assert (counts.updated, counts.rejected) == (1, 1)
    assert not CveProduct.objects.filter(cve__cve_id="CVE-2019-20372").exists()


def test_a_broken_file_exits_non_zero_and_leaves_the_catalog_as_it_was(db, tmp_path, fixture_cves):
    good = cve(fixture_cves, "CVE-2024-6387")
    text = json.dumps(nvd_document(good, {"id": "not-a-cve"}))
    path = tmp_path / "broken.json"
    path.write_text(text)

    with pytest.raises(CommandError, match="broken.json"):
        call_command("import_cves", str(path))

    assert not CveRecord.objects.exists()


def test_a_missing_file_exits_non_zero(db, tmp_path):
    with pytest.raises(CommandError, match="missing.json"):
        call_command("import_cves", str(tmp_path / "missing.json"))


def test_the_import_takes_a_constant_number_of_queries_per_batch(db, django_assert_max_num_queries):
    # 35 records in batches of 10: at most 5 statements per batch, plus the transaction.
    with django_assert_max_num_queries(4 * 5 + 2):
        cve_catalog_import(paths=[CVE_FIXTURE], batch_size=10)


def test_seed_demo_loads_the_catalog_once(db, capsys):
    call_command("seed_demo")
    call_command("seed_demo")

    out = capsys.readouterr().out
    assert "CVE catalog: 35 created" in out
    assert "CVE catalog: 0 created, 0 updated, 35 unchanged" in out
    assert CveRecord.objects.count() == 35
