from pathlib import Path

from scans.findings.candidates import Coverage

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "nmap" / "lab_scan.xml"


def test_it_reads_a_host_with_no_open_port_as_covered_and_clean(parse):
    result = parse("nmap", "nmap/nmap_0port.xml")

    assert result.findings == []
    assert result.services == []
    assert result.coverage == [Coverage(host="127.0.0.1", whole_host=True)]


def test_it_reports_one_open_port_as_an_info_finding_and_a_service(parse):
    result = parse("nmap", "nmap/nmap_1port.xml")

    [finding] = result.findings
    assert (finding.source, finding.rule_id, finding.host) == ("nmap", "nmap-open-port", "127.0.0.1")
    assert (finding.port, finding.protocol, finding.severity) == (5432, "tcp", "info")
    assert finding.evidence["hostnames"] == ["localhost.localdomain"]
    [service] = result.services
    assert (service.port, service.service, service.confidence) == (5432, "postgresql", 0.3)
    assert result.metadata["version"] == "6.40"


def test_it_reads_every_open_port_of_a_host(parse):
    result = parse("nmap", "nmap/nmap_multiple_port.xml")

    ports = [s.port for s in result.services]
    assert ports == [21, 25, 53, 80, 110, 143, 443, 465, 587, 993, 995, 2525, 3306]
    assert {f.host for f in result.findings} == {"198.38.82.159"}
    assert len(result.findings) == 13
    https = next(s for s in result.services if s.port == 443)
    assert https.tls and https.service == "https"


def test_it_turns_vulners_script_output_into_cve_findings_with_cvss(parse):
    result = parse("nmap", "nmap/nmap_script_vulners.xml")

    cves = {f.rule_id: f for f in result.findings if f.cve_ids}
    assert set(cves) == {"CVE-2018-15919", "CVE-2017-15906"}
    finding = cves["CVE-2018-15919"]
    assert finding.cve_ids == ("CVE-2018-15919",)
    assert (finding.cvss_score, finding.severity, finding.port, finding.host) == (5.0, "medium", 5022, "192.168.0.1")
    assert finding.title == "CVE-2018-15919 in OpenSSH 7.4"
    [service] = result.services
    assert (service.product, service.version) == ("OpenSSH", "7.4")
    assert service.cpe == "cpe:2.3:a:openbsd:openssh:7.4:*:*:*:*:*:*:*"


def test_it_falls_back_to_the_vulners_text_output_when_there_are_no_tables():
    from scans.importers.base import get_importer

    xml = b"""<?xml version="1.0"?><nmaprun scanner="nmap" version="7.94">
    <host><status state="up"/><address addr="127.0.0.9" addrtype="ipv4"/>
    <ports><port protocol="tcp" portid="22"><state state="open"/><service name="ssh" product="OpenSSH" version="7.2"/>
    <script id="vulners"
     output="&#xa;  cpe:/a:openbsd:openssh:7.2: &#xa;  &#x9;CVE-2016-6515&#x9;7.8&#x9;https://vulners.com/cve/CVE-2016-6515"/>
    </port></ports></host></nmaprun>"""

    result = get_importer("nmap").parse(xml, "old-nse.xml")

    [cve] = [f for f in result.findings if f.cve_ids]
    assert (cve.rule_id, cve.cvss_score, cve.severity) == ("CVE-2016-6515", 7.8, "high")


def test_it_skips_hosts_that_were_down():
    from scans.importers.base import get_importer

    xml = b"""<nmaprun><host><status state="down"/><address addr="127.0.0.8" addrtype="ipv4"/></host></nmaprun>"""

    result = get_importer("nmap").parse(xml, "down.xml")

    assert (result.findings, result.coverage) == ([], [])


def test_it_reads_the_projects_own_lab_scan_fixture():
    from scans.importers.base import get_importer

    result = get_importer("nmap").parse(FIXTURE)

    assert result.metadata["scanner"] == "nmap"
    hosts = {c.host for c in result.coverage}
    assert hosts == {"127.0.77.1"}
    assert result.metadata["version"] == "7.93"
    ssh = next(s for s in result.services if s.service == "ssh")
    assert (ssh.port, ssh.product, ssh.version) == (34155, "OpenSSH", "8.9p1 Ubuntu 3ubuntu0.6")
    assert ssh.cpe == "cpe:2.3:a:openbsd:openssh:8.9p1:*:*:*:*:*:*:*"
    assert ssh.confidence == 1.0
    http = next(s for s in result.services if s.service == "http")
    assert (http.port, http.product, http.version) == (32961, "nginx", "1.18.0")
    assert http.cpe == "cpe:2.3:a:igor_sysoev:nginx:1.18.0:*:*:*:*:*:*:*"
    assert sorted(f.port for f in result.findings) == [32961, 34155]
