"""Access as a family: does a service let a stranger in? One read-only question per protocol.

Each check asks what an anonymous client may ask (a listing, an info call, an anonymous
login by the protocol's own convention) and says what it saw: ``open`` (the answer came
back, and is the proof), ``protected`` (the service asked for credentials), or
``cleartext`` (a login protocol that carries credentials unencrypted). A check that gets
neither kind of answer gives no verdict. No password is ever tried: FTP's
"USER anonymous" with an e-mail address as PASS is the protocol's anonymous convention
(RFC 1635), not a guess.

The exposure scanner runs these beside its own checks and turns open and cleartext
verdicts into findings.
"""

from __future__ import annotations

import asyncio
import json
import re
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from scans.scanners import connections
from scans.scanners.fingerprint import Probe, client_tls_context, trimmed
from scans.scanners.port_sets import RESERVED_PORTS

OPEN, PROTECTED, CLEARTEXT = "open", "protected", "cleartext"


@dataclass(slots=True)
class Access:
    """One verdict and its proof; the finding's words when it is one."""

    check: str
    state: str
    sent: str
    received: bytes | str
    title: str = ""
    severity: str = "info"
    description: str = ""
    remediation: str = ""
    cwe: int = 306
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rule_id(self) -> str:
        return f"access-{self.check}-{'anonymous' if self.state == OPEN else self.state}"

    def proof(self) -> dict[str, Any]:
        return {"sent": self.sent, "received": trimmed(self.received), **self.extra}


# --- a conversation on one connection --------------------------------------------------------


class Conversation:
    """Several request/answer turns on one connection (logins need them), recorded in the probe's attempts."""

    def __init__(self, probe: Probe) -> None:
        self.probe = probe
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> Conversation:
        if self.probe.port in RESERVED_PORTS:
            raise ConnectionError(f"port {self.probe.port} is reserved and never probed")
        self.reader, self.writer = await connections.open_connection(
            self.probe.address, self.probe.port, ssl=client_tls_context() if self.probe.tls else None,
            server_hostname=(self.probe.hostname or None) if self.probe.tls else None,
            timeout=self.probe.connect_timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()

    async def turn(self, name: str, payload: bytes | None, complete: Callable[[bytes], bool]) -> bytes:
        """Send ``payload`` (None: just listen) and read until ``complete(data)``, EOF or silence."""
        if payload:
            self.writer.write(payload)
            await self.writer.drain()
        data = b""
        outcome = "ok"
        try:
            while not complete(data):
                async with asyncio.timeout(self.probe.read_timeout):
                    chunk = await self.reader.read(65536)
                if not chunk:
                    outcome = "closed" if not data else "ok"
                    break
                data += chunk
        except TimeoutError:
            outcome = "timeout" if not data else "ok"
        except (ConnectionResetError, BrokenPipeError):
            outcome = "reset" if not data else "ok"
        self.probe.attempts.append({"port": self.probe.port, "probe": f"access/{name}", "outcome": outcome})
        return data


async def talk(probe: Probe, steps: Callable[[Conversation], Awaitable[list[Access]]]) -> list[Access]:
    try:
        async with Conversation(probe) as conversation:
            return await steps(conversation)
    except ConnectionRefusedError:
        probe.attempts.append({"port": probe.port, "probe": "access", "outcome": "refused"})
        return []
    except (OSError, TimeoutError, ValueError, struct.error) as exc:
        probe.attempts.append({"port": probe.port, "probe": "access", "outcome": "error", "detail": str(exc)[:200]})
        return []


def _ftp_reply_complete(data: bytes) -> bool:
    """A (multi-line) FTP reply ends with a line "NNN text"."""
    lines = data.split(b"\r\n")
    return len(lines) > 1 and any(re.match(rb"^\d{3} ", line) for line in lines[:-1])


# --- login protocols ----------------------------------------------------------------------


async def check_ftp(probe: Probe) -> list[Access]:
    async def steps(c: Conversation) -> list[Access]:
        greeting = await c.turn("ftp-banner", None, _ftp_reply_complete)
        if not greeting.startswith(b"220"):
            return []
        found = []
        feat = await c.turn("ftp-feat", b"FEAT\r\n", _ftp_reply_complete)
        if not probe.tls and not re.search(rb"^\s*AUTH\s+[^\r\n]*TLS", feat, re.M | re.I):
            found.append(Access(
                "ftp", CLEARTEXT, "FEAT", feat or greeting, "FTP offers no TLS: logins and files cross the network in clear",
                "medium", cwe=319, extra={"auth_tls": False},
                description="FEAT lists no AUTH TLS, so every user name, password and file on this server travels "
                            "unencrypted.",
                remediation="Enable FTPS (AUTH TLS, e.g. vsftpd ssl_enable=YES with force_local_logins_ssl) or move to SFTP.",
            ))
        user = await c.turn("ftp-user-anonymous", b"USER anonymous\r\n", _ftp_reply_complete)
        if user.startswith(b"230"):
            login = user
        elif user.startswith(b"331"):
            login = await c.turn("ftp-pass-anonymous", b"PASS anonymous@watchpost.invalid\r\n", _ftp_reply_complete)
        else:
            login = user
        sent = "USER anonymous ; PASS anonymous@watchpost.invalid (the anonymous convention, RFC 1635)"
        if login.startswith(b"230"):
            listing = await c.turn("ftp-pwd", b"PWD\r\n", _ftp_reply_complete)
            found.append(Access(
                "ftp", OPEN, sent, login + listing, "FTP allows anonymous login", "medium", cwe=284,
                description="Anyone can log in as 'anonymous' and read (perhaps write) the files this server offers.",
                remediation="Disable anonymous FTP (vsftpd anonymous_enable=NO) unless the server is meant to be "
                            "a public archive, and then keep it read-only.",
            ))
        elif login[:3] in (b"530", b"332", b"421"):
            found.append(Access("ftp", PROTECTED, sent, login))
        await c.turn("ftp-quit", b"QUIT\r\n", _ftp_reply_complete)
        return found

    return await talk(probe, steps)


async def check_telnet(probe: Probe) -> list[Access]:
    async def steps(c: Conversation) -> list[Access]:
        opening = await c.turn("telnet-negotiation", None, lambda d: len(d) >= 3)
        if not re.match(rb"^\xff[\xfb-\xfe]", opening):
            return []
        return [Access(
            "telnet", CLEARTEXT, "(connect and listen)", opening, "Telnet login service: credentials travel in clear",
            "high", cwe=319,
            description="Telnet carries the login and everything typed after it unencrypted; anyone on the path "
                        "reads the password.",
            remediation="Disable telnet and use SSH.",
        )]

    return await talk(probe, steps)


# --- coordination, brokers, data stores (their own protocols) -----------------------------------


def _length_prefixed_complete(data: bytes) -> bool:
    return len(data) >= 4 and len(data) >= 4 + struct.unpack_from("!i", data)[0]


async def check_zookeeper(probe: Probe) -> list[Access]:
    """Open a session (no credentials, as every client does) and list the children of "/"."""
    connect = struct.pack("!iqiq", 0, 0, 30000, 0) + struct.pack("!i", 16) + b"\0" * 16 + b"\0"
    children = struct.pack("!ii", 1, 8) + struct.pack("!i", 1) + b"/" + b"\0"
    close = struct.pack("!ii", 2, -11)

    async def steps(c: Conversation) -> list[Access]:
        session = await c.turn("zookeeper-connect", struct.pack("!i", len(connect)) + connect, _length_prefixed_complete)
        if len(session) < 4 + 36 or struct.unpack_from("!i", session)[0] not in (36, 37):
            return []
        reply = await c.turn("zookeeper-getchildren", struct.pack("!i", len(children)) + children,
                             _length_prefixed_complete)
        await c.turn("zookeeper-close", struct.pack("!i", len(close)) + close, _length_prefixed_complete)
        if len(reply) < 20:
            return []
        _, xid, _, err = struct.unpack_from("!iiqi", reply)
        sent = 'ConnectRequest (no credentials) ; getChildren("/")'
        if err == -102:  # NoAuth: an ACL on "/" refuses the anonymous session
            return [Access("zookeeper", PROTECTED, sent, f"getChildren error -102 (NoAuth); bytes {reply[:20].hex()}",
                           extra={"error": "NoAuth"})]
        if xid != 1 or err != 0:
            return []
        (count,) = struct.unpack_from("!i", reply, 20)
        names, offset = [], 24
        for _ in range(max(0, min(count, 100))):
            (size,) = struct.unpack_from("!i", reply, offset)
            names.append(reply[offset + 4:offset + 4 + size].decode("utf-8", "replace"))
            offset += 4 + size
        return [Access(
            "zookeeper", OPEN, sent, json.dumps({"/": names}), "ZooKeeper lets an anonymous client read its tree",
            "high", extra={"znodes": names},
            description="Any client can open a session and read (often write) the znodes that coordinate the "
                        "cluster: configuration, leader election, sometimes credentials.",
            remediation="Set ACLs on the tree (world:anyone read-only at most), enable SASL or client-certificate "
                        "authentication, and keep 2181 on a private network.",
        )]

    return await talk(probe, steps)


async def check_nats(probe: Probe) -> list[Access]:
    async def steps(c: Conversation) -> list[Access]:
        line = await c.turn("nats-info", None, lambda d: d.endswith(b"\r\n"))
        if not line.startswith(b"INFO {"):
            return []
        info = json.loads(line[5:].strip() or b"{}")
        if info.get("auth_required"):
            return [Access("nats", PROTECTED, "(connect and read INFO)", line, extra={"auth_required": True})]
        connect = json.dumps({"verbose": False, "pedantic": False, "name": "watchpost", "lang": "python",
                              "version": "1.0", "protocol": 1})
        reply = await c.turn("nats-connect-ping", f"CONNECT {connect}\r\nPING\r\n".encode(),
                             lambda d: b"PONG\r\n" in d or d.startswith(b"-ERR"))
        if b"PONG" not in reply:
            return [Access("nats", PROTECTED, "CONNECT (no credentials) ; PING", reply)] if b"Authorization" in reply else []
        return [Access(
            "nats", OPEN, "CONNECT (no credentials) ; PING", line + reply, "NATS accepts clients without credentials",
            "high", extra={"server_version": info.get("version", "")},
            description="Any client can connect, subscribe to every subject (\">\") and publish on the message bus.",
            remediation="Require authentication (tokens, NKeys or users with permissions) and TLS.",
        )]

    return await talk(probe, steps)


MQTT_CONNECT = bytes.fromhex("101500044d5154540402000a0009") + b"watchpost"
MQTT_CONNACK = {0: "connection accepted", 4: "bad user name or password", 5: "not authorized"}


async def check_mqtt(probe: Probe) -> list[Access]:
    async def steps(c: Conversation) -> list[Access]:
        ack = await c.turn("mqtt-connect", MQTT_CONNECT, lambda d: len(d) >= 4)
        if len(ack) < 4 or ack[:2] != b"\x20\x02":
            return []
        code = ack[3]
        sent = "CONNECT (MQTT 3.1.1, no user name or password)"
        said = f"CONNACK return code {code} ({MQTT_CONNACK.get(code, 'refused')}); bytes {ack[:4].hex()}"
        if code in (4, 5):
            return [Access("mqtt", PROTECTED, sent, said, extra={"connack_code": code})]
        if code != 0:
            return []
        await c.turn("mqtt-disconnect", b"\xe0\x00", lambda d: True)
        return [Access(
            "mqtt", OPEN, sent, said, "MQTT broker accepts anonymous clients", "high", extra={"connack_code": 0},
            description="Any client can connect and subscribe to every topic ('#'), reading device data, and "
                        "publish commands.",
            remediation="Disable anonymous access (Mosquitto: allow_anonymous false), add users and ACLs, enable TLS.",
        )]

    return await talk(probe, steps)


CQL_STARTUP = b"\x04\x00\x00\x01\x01" + struct.pack("!i", 22) + struct.pack("!H", 1) + \
    struct.pack("!H", 11) + b"CQL_VERSION" + struct.pack("!H", 5) + b"3.0.0"


async def check_cassandra(probe: Probe) -> list[Access]:
    async def steps(c: Conversation) -> list[Access]:
        reply = await c.turn("cql-startup", CQL_STARTUP, lambda d: len(d) >= 9 and len(d) >= 9 + struct.unpack_from("!i", d, 5)[0])
        if len(reply) < 9 or reply[0] != 0x84:
            return []
        sent = "CQL STARTUP (no credentials)"
        if reply[4] == 0x03:  # AUTHENTICATE: the server names its authenticator
            authenticator = reply[11:11 + struct.unpack_from("!H", reply, 9)[0]].decode("utf-8", "replace")
            return [Access("cassandra", PROTECTED, sent, f"AUTHENTICATE {authenticator}; bytes {reply[:9].hex()}")]
        if reply[4] != 0x02:
            return []
        return [Access(
            "cassandra", OPEN, sent, f"READY; bytes {reply[:9].hex()}",
            "Cassandra accepts CQL sessions without authentication", "critical",
            description="The server answered READY to a STARTUP with no credentials: every keyspace can be read "
                        "and changed.",
            remediation="Set authenticator: PasswordAuthenticator and authorizer: CassandraAuthorizer; keep 9042 private.",
        )]

    return await talk(probe, steps)


KAFKA_METADATA = struct.pack("!ihhih", 23, 3, 0, 2, 9) + b"watchpost" + struct.pack("!i", 0)


async def check_kafka(probe: Probe) -> list[Access]:
    """Metadata v0 for all topics: a PLAINTEXT listener answers with brokers and topic names."""

    async def steps(c: Conversation) -> list[Access]:
        reply = await c.turn("kafka-metadata", KAFKA_METADATA, _length_prefixed_complete)
        if len(reply) < 12 or struct.unpack_from("!i", reply, 4)[0] != 2:
            return []
        offset = 8
        (brokers,) = struct.unpack_from("!i", reply, offset)
        offset += 4
        for _ in range(max(0, min(brokers, 100))):
            (size,) = struct.unpack_from("!h", reply, offset + 4)
            offset += 4 + 2 + size + 4
        (count,) = struct.unpack_from("!i", reply, offset)
        offset += 4
        topics = []
        for _ in range(max(0, min(count, 100))):
            (size,) = struct.unpack_from("!h", reply, offset + 2)
            topics.append(reply[offset + 4:offset + 4 + size].decode("utf-8", "replace"))
            offset += 4 + size
            (partitions,) = struct.unpack_from("!i", reply, offset)
            offset += 4
            for _ in range(max(0, min(partitions, 10000))):
                offset += 10
                for _ in range(2):  # replicas, isr
                    (n,) = struct.unpack_from("!i", reply, offset)
                    offset += 4 + 4 * max(0, n)
        return [Access(
            "kafka", OPEN, "Metadata v0 (all topics, no authentication)", json.dumps({"topics": topics}),
            "Kafka broker serves clients without authentication", "high", extra={"topics": topics},
            description="Any client can list topics, consume every message and produce to any topic.",
            remediation="Use SASL_SSL listeners (SCRAM or mTLS) with ACLs (allow.everyone.if.no.acl.found=false).",
        )]

    return await talk(probe, steps)


# --- HTTP APIs --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpListing:
    """A GET that lists something only an authorized client should see."""

    check: str
    path: str
    proves: Callable[[Any], bool]  # the JSON (or text) answer is the listing
    title: str
    severity: str
    description: str
    remediation: str
    protected_statuses: tuple[int, ...] = (401, 403)
    method: str = "GET"
    body: bytes = b""
    # The product's own header, which must come with an open answer: without it a site answering
    # any path with JSON (a soft 404) would pass for the product.
    header: tuple[str, str] = ("", "")  # (name, regex its value must match)


async def check_listing(probe: Probe, listing: HttpListing) -> list[Access]:
    reply = await probe.http(listing.method, listing.path, listing.body, name=f"access/{listing.check}")
    if reply is None:
        return []
    sent = f"{listing.method} {listing.path}" + (f" {listing.body.decode()}" if listing.body else "")
    if reply.status in listing.protected_statuses:
        return [Access(listing.check, PROTECTED, sent, reply.raw_head.split("\r\n", 1)[0] + "\r\n\r\n" +
                       reply.body.decode("utf-8", "replace"), extra={"status": reply.status})]
    document = reply.json()
    name, pattern = listing.header
    own = not name or re.search(pattern, reply.headers.get(name, "")) is not None and name in reply.headers
    if reply.status == 200 and own and listing.proves(document if document is not None else reply.body):
        return [Access(listing.check, OPEN, sent, reply.body, listing.title, listing.severity,
                       description=listing.description, remediation=listing.remediation, extra={"status": 200})]
    return []


LISTINGS: dict[str, HttpListing] = {listing.check: listing for listing in (
    HttpListing("kubernetes-api", "/api/v1/namespaces", lambda d: isinstance(d, dict) and d.get("kind") == "NamespaceList",
                "Kubernetes API lists namespaces to anonymous users", "critical",
                "system:anonymous can read cluster resources: the API server trusts whoever reaches it.",
                "Set --anonymous-auth=false or remove RBAC bindings granting system:anonymous / system:unauthenticated."),
    HttpListing("consul", "/v1/catalog/services", lambda d: isinstance(d, dict) and "consul" in d,
                "Consul catalog is readable without a token", "high",
                "Without ACLs anyone can list services and nodes, read the KV store and register services.",
                "Enable ACLs with default_policy = \"deny\" and give agents and services tokens.",
                header=("x-consul-index", "")),
    HttpListing("nomad", "/v1/jobs", lambda d: isinstance(d, list),
                "Nomad lists jobs without a token", "critical",
                "Without ACLs anyone can read and submit jobs, which run commands on the cluster's clients.",
                "Enable Nomad ACLs (acl { enabled = true }) and bootstrap tokens; enable mTLS.", header=("x-nomad-index", "")),
    HttpListing("couchdb", "/_all_dbs", lambda d: isinstance(d, list) and all(isinstance(n, str) for n in d),
                "CouchDB lists its databases to anonymous users", "high",
                "The server runs without admins (\"admin party\"): anyone can read, change and delete every database.",
                "Create a server admin and require valid users ([chttpd] require_valid_user = true).", header=("server", "^CouchDB/")),
    HttpListing("docker-registry", "/v2/_catalog", lambda d: isinstance(d, dict) and "repositories" in d,
                "Container registry lists repositories without authentication", "high",
                "Anyone can list and pull every image (and its baked-in secrets), perhaps push.",
                "Configure registry authentication (auth: htpasswd or token) and TLS.",
                header=("docker-distribution-api-version", "")),
    HttpListing("jenkins", "/api/json", lambda d: isinstance(d, dict) and "jobs" in d,
                "Jenkins grants read access to anonymous users", "medium",
                "Anonymous users can list jobs and read build logs and configuration, which often leak credentials.",
                "Remove Overall/Read from Anonymous in Manage Jenkins > Security.", header=("x-jenkins", "")),
    HttpListing("influxdb", "/query?q=SHOW%20DATABASES", lambda d: isinstance(d, dict) and "results" in d,
                "InfluxDB answers queries without authentication", "high",
                "Anyone can read every database (SHOW DATABASES answered) and write points.",
                "Set auth-enabled = true in [http] and create an admin user.", header=("x-influxdb-version", "")),
    HttpListing("clickhouse", "/?query=SHOW%20DATABASES", lambda d: isinstance(d, bytes) and b"system" in d.split(b"\n"),
                "ClickHouse runs queries for the default user without a password", "critical",
                "The default user has no password: anyone can read and change every table.",
                "Give the default user a password (or remove it) and restrict networks in users.xml.",
                header=("x-clickhouse-summary", "")),
    HttpListing("bitcoin-jsonrpc", "/", lambda d: isinstance(d, dict) and "subversion" in (d.get("result") or {}),
                "Bitcoin RPC answers without credentials", "critical",
                "The node's RPC runs calls from anyone: wallet, mempool and network control included.",
                "Never expose the RPC port; set rpcauth and rpcallowip to trusted hosts only.",
                method="POST", body=b'{"jsonrpc":"1.0","id":1,"method":"getnetworkinfo","params":[]}'),
)}

PROTOCOL_CHECKS: dict[str, Callable[[Probe], Awaitable[list[Access]]]] = {
    "ftp": check_ftp, "telnet": check_telnet, "zookeeper": check_zookeeper, "nats": check_nats,
    "mqtt": check_mqtt, "cassandra": check_cassandra, "kafka": check_kafka,
}

# check name -> (services it applies to, its usual ports)
ACCESS_CHECKS: dict[str, tuple[frozenset[str], tuple[int, ...]]] = {
    "ftp": (frozenset({"ftp"}), (21,)),
    "telnet": (frozenset({"telnet"}), (23,)),
    "zookeeper": (frozenset({"zookeeper"}), (2181,)),
    "nats": (frozenset({"nats"}), (4222,)),
    "mqtt": (frozenset({"mqtt"}), (1883,)),
    "cassandra": (frozenset({"cassandra"}), (9042,)),
    "kafka": (frozenset({"kafka"}), (9092,)),
    "kubernetes-api": (frozenset({"kubernetes-api"}), (6443,)),
    "consul": (frozenset({"consul"}), (8500,)),
    "nomad": (frozenset({"nomad"}), (4646,)),
    "couchdb": (frozenset({"couchdb"}), (5984,)),
    "docker-registry": (frozenset({"docker-registry"}), (5000,)),
    "jenkins": (frozenset({"jenkins"}), (8080,)),
    "influxdb": (frozenset({"influxdb"}), (8086,)),
    "clickhouse": (frozenset({"clickhouse"}), (8123,)),
    "bitcoin-jsonrpc": (frozenset({"bitcoin-jsonrpc"}), (8332,)),
}


async def check_access(name: str, probe: Probe) -> list[Access]:
    if name in PROTOCOL_CHECKS:
        return await PROTOCOL_CHECKS[name](probe)
    return await check_listing(probe, LISTINGS[name])
