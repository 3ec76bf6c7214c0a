"""A webhook receiver on a loopback address: a real HTTP server that verifies what it is sent.

``verify`` is the README's verification snippet, kept in step with it: signature over
``"<t>." + body`` compared in constant time, a five-minute tolerance, replays refused by
delivery id.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import threading
import time
from collections import deque
from dataclasses import dataclass, field

TOLERANCE_SECONDS = 300


def verify(secret: str, headers, body: bytes, seen: set[str]) -> str:
    """"ok", or why the delivery is refused."""
    try:
        parts = dict(item.split("=", 1) for item in headers["Watchpost-Signature"].split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return "unsigned"
    if abs(time.time() - timestamp) > TOLERANCE_SECONDS:
        return "stale"
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, parts.get("v1", "")):
        return "bad signature"
    delivery = headers.get("Watchpost-Delivery", "")
    if not delivery or delivery in seen:
        return "replay"
    seen.add(delivery)
    return "ok"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verdict: str
    answered: int


@dataclass
class Receiver:
    host: str
    secret: str = ""
    answers: deque = field(default_factory=deque)  # status codes to answer in turn; then 200
    received: list[Received] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    ssl_context: object = None  # an ssl.SSLContext to serve HTTPS

    def start(self) -> Receiver:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items()}
                verdict = verify(receiver.secret, headers, body, receiver.seen)
                if verdict != "ok":
                    code = 400
                else:
                    code = receiver.answers.popleft() if receiver.answers else 200
                    if code >= 300:
                        receiver.seen.discard(headers["Watchpost-Delivery"])  # not processed: a retry is welcome
                receiver.received.append(Received(headers=headers, body=body, verdict=verdict, answered=code))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((self.host, 0), Handler)
        if self.ssl_context is not None:
            self.server.socket = self.ssl_context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str = "/hooks/watchpost", host: str | None = None) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{host or self.host}:{self.port}{path}"

    @property
    def verdicts(self) -> list[str]:
        return [r.verdict for r in self.received]
