"""A chat receiver on a loopback address: a real HTTP server that keeps what Slack or Teams would get."""

from __future__ import annotations

import http.server
import json
import threading
from collections import deque
from dataclasses import dataclass, field


@dataclass
class ChatReceiver:
    host: str
    answers: deque = field(default_factory=deque)  # status codes to answer in turn; then 200
    received: list[tuple[dict, dict]] = field(default_factory=list)  # (headers, JSON body)

    def start(self) -> ChatReceiver:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append((dict(self.headers.items()), json.loads(body)))
                code = receiver.answers.popleft() if receiver.answers else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((self.host, 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str = "/services/T000/B000/XXXX") -> str:
        return f"http://{self.host}:{self.port}{path}"

    @property
    def bodies(self) -> list[dict]:
        return [body for _, body in self.received]
