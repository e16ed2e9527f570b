"""The HTTP server `privacy serve` runs: uvicorn with httptools, through a protocol capping the request head.

uvicorn's httptools parser has no limit on the request line and headers: a 32 MiB `Authorization` header is
read, parsed and handed to the app (seconds of one worker's time, while every other request on it waits).
h11 has a limit, but parses in pure Python, slower on every request. So the service keeps httptools and
counts the head's bytes before the parser sees them: past MAX_HEAD_BYTES (the request line and every header,
together) it answers 431 and closes the connection, having parsed no more than the limit
(docs/security.md, "Input, headers and output")."""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

# The request line and headers together (nginx allows 4 x 8 KiB per header line, Node.js 16 KiB in all).
MAX_HEAD_BYTES = 16 * 1024
# After a 431, what the client still sends is read and dropped for a moment, so that the answer reaches it
# rather than a reset (closing a socket with unread data resets it); but no more than this, nor longer.
_LINGER_BYTES = 1024 * 1024
_LINGER_SECONDS = 2.0
_REFUSAL = b"Request line and headers too large"


def options() -> dict[str, Any]:
    """uvicorn.run's arguments for the HTTP protocol (by name, so that every worker process imports it)."""
    return {"http": f"{__name__}:{CappedHttpToolsProtocol.__name__}"}


class CappedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, fed no more than MAX_HEAD_BYTES of a request's head.

    While a head is being received, data goes to the parser in pieces that never take it past the limit; once
    the parser has seen the whole head (`on_headers_complete`), the body goes through as before, and the count
    starts again with the next request on the connection. A head pipelined behind a request in the same
    packet is counted from the next packet on: the parser sees at most one read's worth more."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        self._refused = False
        self._dropped = 0

    def data_received(self, data: bytes) -> None:
        if self._refused:
            self._dropped += len(data)
            if self._dropped > _LINGER_BYTES:
                self.transport.close()
            return
        while data and self._in_head:
            room = MAX_HEAD_BYTES - self._head_bytes
            if room <= 0:
                self._refuse()
                return
            piece, data = data[:room], data[room:]
            self._head_bytes += len(piece)
            super().data_received(piece)
            if self.parser is None or self.transport.is_closing():
                return  # refused by the parser (400), or gone
        if data:
            super().data_received(data)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_bytes = True, 0

    def _refuse(self) -> None:
        self.logger.warning("Request head larger than %d bytes: answered 431", MAX_HEAD_BYTES)
        if self.cycle is not None and not self.cycle.response_complete:
            # The previous request's answer is still being written: a 431 now would cut into it.
            self.transport.close()
            return
        head = [STATUS_LINE[431]]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head += [
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: " + str(len(_REFUSAL)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
            _REFUSAL,
        ]
        self.transport.write(b"".join(head))
        self._refused = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(_LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()
