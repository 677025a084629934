"""A real HTTP webhook receiver for tests: verifies signatures and answers scripted statuses."""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from domain import signing
from domain.notifications import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    signature_valid: bool

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str:
        return self.headers[name.lower()]

    @property
    def delivery(self) -> str:
        return self.header(DELIVERY_HEADER)

    @property
    def event(self) -> str:
        return self.header(EVENT_HEADER)


@dataclass
class Receiver:
    """Answers ``script`` statuses in order, then ``status``; records every request."""

    secret: str
    status: int = 200
    script: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, received: Received) -> int:
        with self.lock:
            self.received.append(received)
            if not received.signature_valid:
                return 401
            return self.script.pop(0) if self.script else self.status


@contextmanager
def webhook_receiver(
    secret: str, status: int = 200, script: list[int] | None = None
) -> Iterator[Receiver]:
    """Serve a receiver on a free local port in a thread for the duration of the block."""
    receiver = Receiver(secret=secret, status=status, script=list(script or []))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received = Received(
                path=self.path,
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
                signature_valid=signing.verify(
                    receiver.secret, body, self.headers.get(SIGNATURE_HEADER)
                ),
            )
            code = receiver.answer(received)
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test asserts on what was received instead."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
