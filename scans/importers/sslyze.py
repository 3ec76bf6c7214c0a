"""SSLyze JSON: 5.x and later (``server_scan_results[].scan_result.<plugin>.result``) and
3.x/4.x (``server_scan_results[].scan_commands_results.<plugin>``, the server under
``server_info``). The older layout is read into the newer one's shape (a plugin that
errored is simply absent there; ``accepts_client_renegotiation`` is 5.x's
``is_vulnerable_to_client_renegotiation_dos``) and judged by the same rules. Any other
layout (SSLyze 2.x's ``accepted_targets``, a file of another tool) is refused, naming
what it saw and what is supported.

Findings for what SSLyze measured, each under a stable rule id: legacy protocols
accepted, weak cipher suites, Heartbleed, CCS injection, ROBOT, renegotiation,
compression, missing fallback SCSV, and certificate problems (untrusted, wrong name,
expired at scan time, SHA-1, weak key). A plugin that did not complete says nothing.

Coverage is per port, not whole host: SSLyze examines one TLS endpoint, and an import
for 443 must not close findings about 8443.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, BinaryIO

from scans.findings.candidates import Coverage, FindingCandidate, ImportResult, ServiceObservation
from scans.importers.base import ImportContext, Importer, register, trim
from scans.importers.reading import Fields, kind, load_json

_PROTOCOLS = (
    ("ssl_2_0_cipher_suites", "SSL 2.0", "sslyze-ssl2-enabled", "high", ()),
    ("ssl_3_0_cipher_suites", "SSL 3.0", "sslyze-ssl3-enabled", "high", ("CVE-2014-3566",)),
    ("tls_1_0_cipher_suites", "TLS 1.0", "sslyze-tls10-enabled", "medium", ()),
    ("tls_1_1_cipher_suites", "TLS 1.1", "sslyze-tls11-enabled", "medium", ()),
    ("tls_1_2_cipher_suites", "TLS 1.2", "", "", ()),
    ("tls_1_3_cipher_suites", "TLS 1.3", "", "", ()),
)
_WEAK_CIPHER = re.compile(r"NULL|anon|EXPORT|RC4|RC2|_DES_|DES40|3DES|DES_CBC|MD5|IDEA", re.IGNORECASE)
_CIPHER_CVES = (("3DES", "CVE-2016-2183"), ("RC4", "CVE-2013-2566"), ("RC4", "CVE-2015-2808"))
_REFERENCE = "https://github.com/nabla-c0d3/sslyze"
SUPPORTED_LAYOUTS = ("SSLyze 5.x+ JSON (server_scan_results[].scan_result)",
                     "SSLyze 3.x/4.x JSON (server_scan_results[].scan_commands_results)")
# 4.x names that 5.x renamed, per plugin: {plugin: {old key: new key}}.
_RENAMED = {"session_renegotiation": {"accepts_client_renegotiation": "is_vulnerable_to_client_renegotiation_dos"}}


@register
class SslyzeImporter(Importer):
    name = "sslyze"
    formats = ("json",)
    description = "SSLyze JSON output (3.x, 4.x and 5.x or later)"

    def read(self, stream: BinaryIO, context: ImportContext) -> ImportResult:
        document = load_json(stream.read(), context)
        if not isinstance(document, dict) or not isinstance(document.get("server_scan_results"), list):
            raise context.reject(f"{_layout_seen(document)}; supported: {'; '.join(SUPPORTED_LAYOUTS)}", path="$")
        top = Fields(document, "$", context)
        result = self.new_result(context)
        result.metadata.update(
            {
                "scanner": "sslyze",
                "version": top.text("sslyze_version"),
                "started": top.text("date_scans_started"),
                "finished": top.text("date_scans_completed"),
            }
        )
        scanned_at = _datetime(top.text("date_scans_completed"))
        covered: dict[str, list[int]] = {}
        layouts: dict[str, None] = {}
        for index, server in enumerate(top.children("server_scan_results")):
            context.record = index
            if server.has("scan_commands_results") or (server.has("server_info") and not server.has("scan_result")):
                server = _from_4x(server)
                layouts["3.x/4.x"] = None
            elif server.has("scan_result") or server.has("server_location"):
                layouts["5.x"] = None
            else:
                raise context.reject(
                    f"a server result with neither scan_result nor scan_commands_results (keys: "
                    f"{_keys(server.obj)}); supported: {'; '.join(SUPPORTED_LAYOUTS)}", path=server.path)
            location = server.child("server_location")
            hostname = location.text("hostname")
            host = location.text("ip_address") or hostname or context.default_host
            port = location.integer("port")
            if port is not None and not 0 < port < 65536:
                raise context.reject(f"port {port} is out of range", path=f"{location.path}.port")
            if server.text("connectivity_status") not in ("", "COMPLETED") or not host:
                continue  # never reached the server: says nothing about it
            endpoint = _Endpoint(self.name, host, hostname, port)
            self._server(server.child("scan_result"), endpoint, scanned_at)
            result.findings.extend(endpoint.findings)
            connectivity = server.child("connectivity_result")
            result.services.append(
                ServiceObservation(
                    host=host,
                    port=port or 443,
                    service="tls",
                    tls=True,
                    confidence=1.0,
                    evidence={
                        "hostname": hostname,
                        "highest_tls_version": connectivity.text("highest_tls_version_supported"),
                        "cipher_suite": connectivity.text("cipher_suite_supported"),
                    },
                )
            )
            if server.text("scan_status") in ("", "COMPLETED"):
                covered.setdefault(host, []).append(port or 443)
        result.coverage = [Coverage(host=h, ports=tuple(sorted(set(p)))) for h, p in covered.items()]
        result.metadata["layout"] = ", ".join(layouts)
        return result

    def _server(self, scan: Fields, endpoint: _Endpoint, scanned_at: datetime | None) -> None:
        weak: dict[str, list[str]] = {}
        for key, label, rule, severity, cves in _PROTOCOLS:
            protocol = _completed(scan, key)
            if protocol is None:
                continue
            accepted = [c.child("cipher_suite") for c in protocol.children("accepted_cipher_suites")]
            if rule and (protocol.flag("is_tls_version_supported") or accepted):
                endpoint.add(
                    rule,
                    f"{label} accepted",
                    severity,
                    f"The server accepts connections over {label}, a protocol version with known weaknesses.",
                    f"Disable {label}; offer TLS 1.2 and TLS 1.3 only.",
                    cve_ids=cves,
                    evidence={"accepted_cipher_suites": len(accepted)},
                )
            for suite in accepted:
                name = suite.text("name")
                size = suite.integer("key_size")
                if _WEAK_CIPHER.search(name) or suite.flag("is_anonymous") or (size is not None and size < 128):
                    weak.setdefault(name, []).append(label)
        if weak:
            names = sorted(weak)
            cves = tuple(dict.fromkeys(cve for marker, cve in _CIPHER_CVES if any(marker in n for n in names)))
            endpoint.add(
                "sslyze-weak-cipher-suites",
                "Weak cipher suites accepted",
                "medium",
                f"The server accepts {len(names)} weak cipher suite(s) (3DES, RC4, DES, NULL, EXPORT or anonymous).",
                "Offer only AEAD cipher suites with forward secrecy (ECDHE with AES-GCM or ChaCha20-Poly1305).",
                cve_ids=cves,
                evidence={"cipher_suites": {n: weak[n] for n in names[:50]}},
            )

        checks = (
            ("heartbleed", "is_vulnerable_to_heartbleed", "sslyze-heartbleed", "Vulnerable to Heartbleed", "critical",
             ("CVE-2014-0160",), "Upgrade OpenSSL and replace the certificate's private key."),
            ("openssl_ccs_injection", "is_vulnerable_to_ccs_injection", "sslyze-ccs-injection",
             "Vulnerable to OpenSSL CCS injection", "high", ("CVE-2014-0224",), "Upgrade OpenSSL."),
            ("session_renegotiation", "is_vulnerable_to_client_renegotiation_dos", "sslyze-client-renegotiation-dos",
             "Client-initiated renegotiation allowed (denial of service)", "medium", (),
             "Disable client-initiated renegotiation."),
            ("tls_compression", "supports_compression", "sslyze-tls-compression", "TLS compression enabled (CRIME)",
             "medium", ("CVE-2012-4929",), "Disable TLS-level compression."),
            ("tls_1_3_early_data", "supports_early_data", "sslyze-tls13-early-data", "TLS 1.3 early data accepted",
             "low", (), "Disable 0-RTT early data unless every early request is replay-safe."),
        )
        for plugin, flag, rule, title, severity, cves, fix in checks:
            data = _completed(scan, plugin)
            if data is not None and data.flag(flag):
                endpoint.add(rule, title, severity, f"SSLyze reports {flag.replace('_', ' ')}.", fix, cve_ids=cves)

        renegotiation = _completed(scan, "session_renegotiation")
        if renegotiation is not None and renegotiation.flag("supports_secure_renegotiation") is False:
            endpoint.add(
                "sslyze-insecure-renegotiation", "Secure renegotiation not supported", "medium",
                "The server does not support the secure renegotiation extension (RFC 5746).",
                "Enable secure renegotiation or disable renegotiation entirely.", cve_ids=("CVE-2009-3555",),
            )
        fallback = _completed(scan, "tls_fallback_scsv")
        if fallback is not None and fallback.flag("supports_fallback_scsv") is False:
            endpoint.add(
                "sslyze-no-fallback-scsv", "TLS_FALLBACK_SCSV not supported", "low",
                "The server does not refuse protocol downgrades signalled by TLS_FALLBACK_SCSV.",
                "Enable TLS_FALLBACK_SCSV support, or disable every protocol below TLS 1.2.",
            )
        robot = _completed(scan, "robot")
        if robot is not None and robot.text("robot_result").startswith("VULNERABLE"):
            endpoint.add(
                "sslyze-robot", "Vulnerable to ROBOT", "high",
                f"SSLyze's ROBOT check found an RSA padding oracle ({robot.text('robot_result')}).",
                "Disable cipher suites using RSA key exchange, or patch the TLS stack.",
                cve_ids=("CVE-2017-13099",), evidence={"robot_result": robot.text("robot_result")},
            )
        certificates = _completed(scan, "certificate_info")
        if certificates is not None:
            for index, deployment in enumerate(certificates.children("certificate_deployments")):
                _certificate(deployment, endpoint, scanned_at, index)


class _Endpoint:
    """Collects the findings for one host:port so every finding carries the same place."""

    def __init__(self, source: str, host: str, hostname: str, port: int | None) -> None:
        self.source, self.host, self.hostname, self.port = source, host, hostname, port
        self.findings: list[FindingCandidate] = []

    def add(
        self,
        rule: str,
        title: str,
        severity: str,
        description: str,
        remediation: str,
        *,
        cve_ids: tuple[str, ...] = (),
        cwe: int | None = None,
        location: str = "",
        evidence: dict[str, Any] | None = None,
    ) -> None:
        evidence = dict(evidence or {})
        if self.hostname:
            evidence["hostname"] = self.hostname
        self.findings.append(
            FindingCandidate(
                source=self.source,
                rule_id=rule,
                title=title,
                host=self.host,
                severity=severity,
                cve_ids=cve_ids,
                cwe=cwe,
                port=self.port,
                location=location,
                description=description,
                remediation=remediation,
                references=(_REFERENCE,),
                evidence=evidence,
            )
        )


def _certificate(deployment: Fields, endpoint: _Endpoint, scanned_at: datetime | None, index: int) -> None:
    chain = list(deployment.children("received_certificate_chain"))
    leaf = chain[0] if chain else None
    subject = leaf.child("subject").text("rfc4514_string") if leaf else ""
    location = f"certificate {index}" if index else ""
    evidence = {"subject": trim(subject, 300)} if subject else {}
    if leaf is not None:
        evidence["sha256"] = leaf.text("fingerprint_sha256")

    stores = list(deployment.children("path_validation_results"))
    trusted = [s for s in stores if s.flag("was_validation_successful") or s.has("verified_certificate_chain")]
    if stores and not trusted:
        errors = {
            s.child("trust_store").text("name"): trim(s.text("validation_error") or s.text("openssl_error_string"), 200)
            for s in stores
        }
        endpoint.add(
            "sslyze-cert-untrusted", "Certificate not trusted", "high",
            "No trust store (Mozilla, Apple, Android, Java, Windows) validated the certificate chain.",
            "Serve a certificate issued by a public CA, with the full intermediate chain.",
            cwe=295, location=location, evidence={**evidence, "validation_errors": errors},
        )
    if deployment.flag("leaf_certificate_subject_matches_hostname") is False:
        endpoint.add(
            "sslyze-cert-hostname-mismatch", "Certificate does not match the host name", "high",
            f"The certificate does not name {endpoint.hostname or endpoint.host}.",
            "Serve a certificate whose subject alternative names include this host name.",
            cwe=297, location=location, evidence=evidence,
        )
    if deployment.flag("verified_chain_has_sha1_signature"):
        endpoint.add(
            "sslyze-cert-sha1-signature", "Certificate chain signed with SHA-1", "medium",
            "A certificate in the verified chain is signed with SHA-1, which is broken for signatures.",
            "Reissue the certificate with a SHA-256 signature.", cwe=328, location=location, evidence=evidence,
        )
    if deployment.flag("verified_chain_has_legacy_symantec_anchor"):
        endpoint.add(
            "sslyze-cert-symantec-anchor", "Certificate chains to a distrusted Symantec root", "medium",
            "Browsers distrust the legacy Symantec roots this chain anchors to.",
            "Reissue the certificate from a currently trusted CA.", location=location, evidence=evidence,
        )
    if leaf is None:
        return
    not_after = _datetime(leaf.text("not_valid_after"))
    not_before = _datetime(leaf.text("not_valid_before"))
    if scanned_at and not_after and not_after < scanned_at:
        endpoint.add(
            "sslyze-cert-expired", "Certificate expired", "high",
            f"The certificate expired on {leaf.text('not_valid_after')}, before the scan.",
            "Renew the certificate and automate renewal.", cwe=298, location=location,
            evidence={**evidence, "not_valid_after": leaf.text("not_valid_after")},
        )
    elif scanned_at and not_before and not_before > scanned_at:
        endpoint.add(
            "sslyze-cert-not-yet-valid", "Certificate not yet valid", "medium",
            f"The certificate is valid only from {leaf.text('not_valid_before')}.",
            "Check the server clock and the certificate's validity period.", cwe=298, location=location,
            evidence={**evidence, "not_valid_before": leaf.text("not_valid_before")},
        )
    key = leaf.child("public_key")
    algorithm = key.text("algorithm").lower()
    size = key.integer("key_size")
    minimum = 2048 if "rsa" in algorithm or "dsa" in algorithm else 224 if "ec" in algorithm else 0
    if size is not None and size < minimum:
        endpoint.add(
            "sslyze-cert-weak-key", f"Weak certificate key ({size}-bit)", "medium",
            f"The certificate's {key.text('algorithm').strip('_')} key is {size} bits; at least {minimum} is required.",
            "Reissue the certificate with a 2048-bit (or larger) RSA key or a P-256 EC key.",
            cwe=326, location=location, evidence={**evidence, "key_size": size},
        )


def _from_4x(server: Fields) -> Fields:
    """A 3.x/4.x server result in the 5.x shape, so one set of rules judges both."""
    info = server.child("server_info")
    commands = server.child("scan_commands_results")
    errors = server.child("scan_commands_errors")
    scan: dict[str, Any] = {}
    for plugin, value in commands.obj.items():
        if plugin in errors.obj or value is None:
            continue  # a plugin that errored says nothing
        if isinstance(value, dict) and plugin in _RENAMED:
            value = {_RENAMED[plugin].get(k, k): v for k, v in value.items()}
        scan[plugin] = {"status": "COMPLETED", "result": value}
    # 3.x/4.x list only the servers they could reach (the others go to server_connectivity_errors).
    adapted = {
        "server_location": info.child("server_location").obj,
        "connectivity_status": "COMPLETED",
        "connectivity_result": info.child("tls_probing_result").obj,
        "scan_status": "COMPLETED",
        "scan_result": scan,
    }
    return Fields(adapted, server, server.context, ".server_info")


def _keys(obj: dict[str, Any], limit: int = 8) -> str:
    names = [str(k) for k in list(obj)[:limit]]
    return ", ".join(names) + (", ..." if len(obj) > limit else "") if names else "none"


def _layout_seen(document: Any) -> str:
    """What a document that is not a supported SSLyze report looks like, in a few words."""
    if isinstance(document, dict):
        if "accepted_targets" in document:
            version = document.get("sslyze_version")
            return f"SSLyze {version if isinstance(version, str) else '1.x/2.x'} layout (accepted_targets), not supported"
        if "server_scan_results" in document:
            return f"server_scan_results is {kind(document['server_scan_results'])}, not an array"
        return f"not an SSLyze report (an object with keys: {_keys(document)})"
    return f"not an SSLyze report (the document is {kind(document)})"


def _completed(scan: Fields, plugin: str) -> Fields | None:
    attempt = scan.child(plugin)
    if attempt.text("status") not in ("", "COMPLETED") or not attempt.has("result"):
        return None
    return attempt.child("result")


def _datetime(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    # SSLyze writes naive UTC times; compare everything as naive UTC.
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value
