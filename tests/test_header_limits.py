"""The request line and headers are capped (16 KiB together) in the server `privacy serve` starts: a bigger
head is answered 431 and the connection closed, before the service reads or parses the rest, and the
server keeps answering everyone else meanwhile. Tested on a real server process, over raw sockets."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support import live_server

LIMIT = 16 * 1024


def privacy_serve(port: int) -> list[str]:
    """`privacy serve`, as docker/entrypoint.sh and the operations guide start it."""
    return [
        sys.executable,
        "-c",
        "from app.cli import main; main()",
        "serve",
        "--no-migrate",
        "--port",
        str(port),
    ]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    with live_server(tmp_path_factory.mktemp("serve"), command=privacy_serve) as served:
        yield served.url


def _exchange(
    url: str, head: bytes, *, chunk: int = 64 * 1024, timeout: float = 10
) -> tuple[int | None, bytes]:
    """Send `head` (a whole request head) over a raw socket, chunk by chunk, and read the answer: (status or
    None when the server closed without one, what it sent). A server that stops reading mid-send is fine."""
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        with contextlib.suppress(ConnectionError):
            for start in range(0, len(head), chunk):
                connection.sendall(head[start : start + chunk])
        received = b""
        with contextlib.suppress(ConnectionError, TimeoutError):
            while True:
                data = connection.recv(65536)
                if not data:
                    break
                received += data
                if b"\r\n\r\n" in received and b"connection: close" not in received.lower():
                    break  # a keep-alive answer: its head is enough here
    if not received.startswith(b"HTTP/1.1 "):
        return None, received
    return int(received[9:12]), received


def _head(target: str = "/healthz", *headers: tuple[str, str]) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: 127.0.0.1"] + [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _sized(total: int, target: str = "/healthz") -> bytes:
    """A GET of /healthz whose head is exactly `total` bytes, the excess in one `X-Filler` header."""
    base = len(_head(target, ("X-Filler", "")))
    return _head(target, ("X-Filler", "a" * (total - base)))


# The classes of an oversized head: one big header, a long request line, many small headers, a bearer token.
OVERSIZED = {
    "one-header": _sized(32 * 1024),
    "just-over": _sized(LIMIT + 1),
    "request-line": _head("/healthz?q=" + "a" * (32 * 1024)),
    "many-headers": _head("/healthz", *((f"X-H{n}", "v" * 30) for n in range(1000))),
    "authorization": _head("/v1/subjects", ("Authorization", "Bearer " + "a" * (32 * 1024))),
}


@pytest.mark.parametrize("name", OVERSIZED)
def test_an_oversized_head_is_answered_431(server, name):
    status, answer = _exchange(server, OVERSIZED[name])
    assert status == 431, answer[:200]
    assert b"connection: close" in answer.lower()


@pytest.mark.parametrize("total", [1024, 8 * 1024, LIMIT])
def test_heads_up_to_the_limit_are_served(server, total):
    status, answer = _exchange(server, _sized(total))
    assert status == 200, answer[:200]


def test_a_head_split_over_many_small_writes_counts_whole(server):
    status, _ = _exchange(server, _sized(32 * 1024), chunk=100)
    assert status == 431
    status, _ = _exchange(server, _sized(LIMIT), chunk=100)
    assert status == 200


def test_a_request_with_a_body_beyond_the_limit_is_served(server):
    """Only the head counts: a body that arrives with it, in the same packets, is not head."""
    body = b'{"email": "x"}' + b" " * (48 * 1024)
    head = (
        f"POST /v1/subjects HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    status, answer = _exchange(server, head + body)
    assert status == 401, answer[:300]  # no token: the service read the request and answered it


def test_keep_alive_requests_each_get_their_own_allowance(server):
    port = int(server.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        for _ in range(4):
            connection.sendall(_sized(12 * 1024))  # 48 KiB over one connection, 12 KiB a head
            received = b""
            while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
                received += connection.recv(65536)
            assert received.startswith(b"HTTP/1.1 200"), received[:200]


def test_a_32_mib_header_does_not_slow_the_others(server):
    """The issue's attack: a 32 MiB Authorization header, sent while /healthz is measured."""
    outcome: dict[str, object] = {}

    def attack() -> None:
        started = time.perf_counter()
        outcome["status"], _ = _exchange(
            server, _head("/v1/subjects", ("Authorization", "Bearer " + "a" * (32 * 1024 * 1024))), timeout=30
        )
        outcome["seconds"] = time.perf_counter() - started

    thread = threading.Thread(target=attack)
    thread.start()
    slowest = 0.0
    with httpx.Client(base_url=server, timeout=10) as http:
        while thread.is_alive():
            started = time.perf_counter()
            assert http.get("/healthz").status_code == 200
            slowest = max(slowest, time.perf_counter() - started)
    thread.join()
    assert outcome["status"] in (431, None), outcome  # 431, or closed before the client read it
    assert outcome["seconds"] < 3, outcome  # refused after 16 KiB, not after 32 MiB
    assert slowest < 1.0, slowest  # generous: the suite shares two cores; before the fix the attack took 7 s
