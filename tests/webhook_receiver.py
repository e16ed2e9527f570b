"""A webhook receiver for the tests: a real HTTP server on loopback (tests/test_webhooks.py,
tests/test_webhook_delivery.py and the tests that take it from there)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """A real HTTP server on loopback that records what it receives (`received`: headers, lower-cased, and
    body) and when each request arrived (`arrivals`: time.monotonic() and its webhook-id), takes `delay`
    seconds over each request and answers as told (`answers`: status and headers, in turn; 200 once none
    are left)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.arrivals: list[tuple[float, str]] = []
        self.answers: list[tuple[int, dict[str, str]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.arrivals.append((time.monotonic(), self.headers["webhook-id"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                time.sleep(receiver.delay)
                status, headers = receiver.answers.pop(0) if receiver.answers else (200, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def ids(self) -> list[str]:
        """The webhook-id of each request, in the order they arrived."""
        return [webhook_id for _, webhook_id in self.arrivals]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
