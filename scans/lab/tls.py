"""Certificates and server TLS contexts for the lab, made at test time.

Usage::

    certs = CertFactory()                       # PEMs in a private temp dir
    leaf = certs.issue("node.lab", sans=["node.lab", "127.0.4.1"])   # signed by the lab CA
    old = certs.issue("old.lab", expired=True, key="rsa1024", hash="sha1", self_signed=True)
    with Lab() as lab:
        svc = lab.serve("127.0.4.1", 0, handler, ssl_context=legacy_server_context(old))
    certs.cleanup()

Debian's OpenSSL 3 refuses TLS 1.0/1.1, SHA-1 signatures and RSA keys under 2048
bits at its default security level, so every context built here lowers the security
level to 0 *before* loading the certificate; otherwise the weak ones would not load.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import shutil
import ssl
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_TYPES = ("rsa2048", "rsa1024", "rsa3072", "rsa4096", "ec256", "ec384")
HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}

# cryptography (>= 45) refuses to sign with SHA-1, so a SHA-1 certificate is built with
# SHA-256, its TBS re-labelled and re-signed by hand. Both OIDs encode to 11 bytes, so
# swapping them keeps every DER length valid.
_SHA256_RSA_OID = bytes.fromhex("06092a864886f70d01010b")
_SHA1_RSA_OID = bytes.fromhex("06092a864886f70d010105")

# Ciphers a deliberately weak server offers besides normal ones; limited to what the
# local OpenSSL can still negotiate (Debian's build has no RC4, 3DES, DES or EXPORT).
# (ADH suites would also need DH parameters loaded, which Python's ssl does not do by default.)
WEAK_CIPHERS = "NULL-SHA:NULL-SHA256:NULL-MD5:AECDH-AES128-SHA:AES128-SHA"


@dataclass(frozen=True, slots=True)
class CertBundle:
    """One certificate and its key on disk. ``chain_path`` is leaf + issuer, for servers."""

    name: str
    cert_path: Path
    key_path: Path
    chain_path: Path
    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    issuer: CertBundle | None = None

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def self_signed(self) -> bool:
        return self.issuer is None


def new_key(kind: str = "rsa2048") -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    if kind.startswith("rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))
    if kind == "ec256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ec384":
        return ec.generate_private_key(ec.SECP384R1())
    raise ValueError(f"unknown key type {kind!r}; known: {', '.join(KEY_TYPES)}")


def _general_name(value: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        return x509.DNSName(value)


class CertFactory:
    """Makes CA, leaf, self-signed and deliberately broken certificates in one temp dir.

    Keys are cached per type: RSA generation dominates the cost, and tests that need
    a dozen certificates do not need a dozen distinct keys.
    """

    def __init__(self, directory: str | Path | None = None) -> None:
        self._own_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="watchpost-lab-tls-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self._keys: dict[str, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey] = {}
        self._ca: CertBundle | None = None
        self._serial = 0

    def __enter__(self) -> CertFactory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def cleanup(self) -> None:
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def key(self, kind: str = "rsa2048", *, fresh: bool = False):
        if fresh:
            return new_key(kind)
        if kind not in self._keys:
            self._keys[kind] = new_key(kind)
        return self._keys[kind]

    @property
    def ca(self) -> CertBundle:
        """The lab CA (created on first use); leaves are signed by it unless self-signed."""
        if self._ca is None:
            self._ca = self._build(
                "Watchpost Lab CA", name="lab-ca", sans=(), key=self.key("rsa2048", fresh=True), issuer=None,
                not_before=None, not_after=None, hash="sha256", is_ca=True,
            )
        return self._ca

    def issue(
        self,
        common_name: str = "localhost",
        *,
        sans: Iterable[str] | None = None,
        key: str = "rsa2048",
        hash: str = "sha256",
        self_signed: bool = False,
        issuer: CertBundle | None = None,
        expired: bool = False,
        not_yet_valid: bool = False,
        days: int = 90,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        name: str = "",
    ) -> CertBundle:
        """Issue a leaf. ``sans`` defaults to the common name; names that parse as IPs become IP SANs.

        ``hash="sha1"`` works for RSA keys only. ``expired`` / ``not_yet_valid`` shift the
        validity window by ``days``; explicit ``not_before``/``not_after`` win.
        """
        now = dt.datetime.now(dt.timezone.utc)
        if expired:
            not_before = not_before or now - dt.timedelta(days=days + 30)
            not_after = not_after or now - dt.timedelta(days=30)
        elif not_yet_valid:
            not_before = not_before or now + dt.timedelta(days=30)
            not_after = not_after or now + dt.timedelta(days=30 + days)
        else:
            not_before = not_before or now - dt.timedelta(days=1)
            not_after = not_after or now + dt.timedelta(days=days)
        return self._build(
            common_name,
            name=name or f"{re.sub(r'[^A-Za-z0-9.-]+', '_', common_name)}-{self._serial + 1}",
            sans=tuple(sans) if sans is not None else (common_name,),
            key=self.key(key),
            issuer=None if self_signed else (issuer or self.ca),
            not_before=not_before,
            not_after=not_after,
            hash=hash,
            is_ca=False,
        )

    # Shorthands that read well in tests.
    def self_signed(self, common_name: str = "localhost", **kw) -> CertBundle:
        return self.issue(common_name, self_signed=True, **kw)

    def expired(self, common_name: str = "localhost", **kw) -> CertBundle:
        return self.issue(common_name, expired=True, **kw)

    def not_yet_valid(self, common_name: str = "localhost", **kw) -> CertBundle:
        return self.issue(common_name, not_yet_valid=True, **kw)

    def sha1_signed(self, common_name: str = "localhost", **kw) -> CertBundle:
        return self.issue(common_name, hash="sha1", **kw)

    def _build(self, common_name, *, name, sans, key, issuer, not_before, not_after, hash, is_ca) -> CertBundle:
        self._serial += 1
        now = dt.datetime.now(dt.timezone.utc)
        subject = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Watchpost Lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ])
        signing_key = issuer.private_key if issuer else key
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.certificate.subject if issuer else subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - dt.timedelta(days=1))
            .not_valid_after(not_after or now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )
        if issuer:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.private_key.public_key()), critical=False
            )
        if sans:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([_general_name(s) for s in sans]), critical=False
            )
        if is_ca:
            builder = builder.add_extension(
                x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                              data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                              encipher_only=False, decipher_only=False),
                critical=True,
            )
        else:
            builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)

        if hash == "sha1":
            certificate = _sign_sha1(builder, signing_key)
        elif hash in HASHES:
            certificate = builder.sign(signing_key, HASHES[hash]())
        else:
            raise ValueError(f"unknown hash {hash!r}; known: sha1, {', '.join(HASHES)}")

        cert_path = self.directory / f"{name}.crt"
        key_path = self.directory / f"{name}.key"
        chain_path = self.directory / f"{name}.chain.pem"
        cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
        cert_path.write_bytes(cert_pem)
        key_path.write_bytes(
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
        )
        key_path.chmod(0o600)
        chain_path.write_bytes(cert_pem + (issuer.cert_pem if issuer else b""))
        return CertBundle(name, cert_path, key_path, chain_path, certificate, key, issuer)


def _sign_sha1(builder: x509.CertificateBuilder, signing_key) -> x509.Certificate:
    if not isinstance(signing_key, rsa.RSAPrivateKey):
        raise ValueError("SHA-1 certificates are supported with RSA signing keys only")
    draft = builder.sign(signing_key, hashes.SHA256())
    tbs = draft.tbs_certificate_bytes
    if tbs.count(_SHA256_RSA_OID) != 1:
        raise RuntimeError("unexpected TBS layout while relabelling the signature algorithm")
    tbs = tbs.replace(_SHA256_RSA_OID, _SHA1_RSA_OID)
    signature = signing_key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    algorithm = _der(0x30, _SHA1_RSA_OID + b"\x05\x00")
    der = _der(0x30, tbs + algorithm + _der(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(der)


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + body


def _version(name: str | ssl.TLSVersion | None) -> ssl.TLSVersion | None:
    if name is None or isinstance(name, ssl.TLSVersion):
        return name
    return {
        "1.0": ssl.TLSVersion.TLSv1, "1.1": ssl.TLSVersion.TLSv1_1,
        "1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3,
    }[name.removeprefix("TLSv").removeprefix("tls")]


def server_context(
    bundle: CertBundle,
    *,
    minimum: str | ssl.TLSVersion | None = "1.2",
    maximum: str | ssl.TLSVersion | None = None,
    ciphers: str = "DEFAULT",
) -> ssl.SSLContext:
    """A server context for ``bundle``. Versions as "1.0".."1.3"; security level 0 always.

    Level 0 is what lets a weak key or SHA-1 certificate load at all; what the server
    then accepts is governed by ``minimum``/``maximum`` and ``ciphers``.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        # TLSVersion.TLSv1/TLSv1_1 are deprecated in Python; here they are the point.
        warnings.simplefilter("ignore", DeprecationWarning)
        context.set_ciphers(f"{ciphers}:@SECLEVEL=0")
        if minimum is not None:
            context.minimum_version = _version(minimum)
        if maximum is not None:
            context.maximum_version = _version(maximum)
    context.load_cert_chain(str(bundle.chain_path), str(bundle.key_path))
    return context


def modern_server_context(bundle: CertBundle) -> ssl.SSLContext:
    """TLS 1.2 and 1.3 with strong ciphers only: the baseline a clean target offers."""
    return server_context(bundle, minimum="1.2", ciphers="ECDHE+AESGCM:ECDHE+CHACHA20")


def legacy_server_context(bundle: CertBundle, *, maximum: str | None = None) -> ssl.SSLContext:
    """Accepts TLS 1.0 and 1.1 (and up to ``maximum``, default 1.3)."""
    return server_context(bundle, minimum="1.0", maximum=maximum, ciphers="DEFAULT")


def weak_cipher_server_context(bundle: CertBundle, *, minimum: str = "1.0") -> ssl.SSLContext:
    """Offers NULL, anonymous (AECDH) and CBC-SHA1 suites up to TLS 1.2 (1.3 suites cannot be weakened)."""
    return server_context(bundle, minimum=minimum, maximum="1.2", ciphers=WEAK_CIPHERS)


def legacy_protocols_supported() -> dict[str, bool]:
    """Whether this process's OpenSSL can still speak each legacy version, checked in-process."""
    return {name: _loopback_handshake(name) for name in ("1.0", "1.1")}


def _loopback_handshake(version: str) -> bool:
    """Handshake over a socketpair (no network) with both ends pinned to ``version``."""
    import socket
    import threading

    with CertFactory() as certs:
        bundle = certs.issue("probe", key="ec256", self_signed=True)
        server = server_context(bundle, minimum=version, maximum=version)
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client.check_hostname = False
        client.verify_mode = ssl.CERT_NONE
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            client.set_ciphers("ALL:@SECLEVEL=0")
            client.minimum_version = client.maximum_version = _version(version)
        a, b = socket.socketpair()
        a.settimeout(5)
        b.settimeout(5)
        outcome: list[str] = []

        def serve() -> None:
            try:
                with server.wrap_socket(a, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            with client.wrap_socket(b) as tls:
                outcome.append(tls.version() or "")
        except (ssl.SSLError, OSError):
            pass
        finally:
            a.close()
            b.close()
            thread.join(5)
    return bool(outcome) and outcome[0] in {"TLSv1", "TLSv1.1"}
