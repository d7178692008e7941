"""Length-prefixed frames over a stream socket.

A frame is a 4-byte big-endian unsigned length ``N`` followed by ``N`` bytes holding one
CBOR item. ``N`` above :data:`MAX_FRAME` is a protocol error: the reader raises
:class:`FrameError` and the connection is closed.
"""

from __future__ import annotations

import socket
import struct

__all__ = ["MAX_FRAME", "FrameError", "FrameReader", "encode_header", "read_frame", "write_frame"]

MAX_FRAME = 1 << 30
"""Largest payload a frame may carry (1 GiB)."""

_HEADER = struct.Struct(">I")
_unpack_header = _HEADER.unpack_from
encode_header = _HEADER.pack
"""``encode_header(n) -> bytes``: the 4-byte length prefix of an ``n``-byte payload."""

_RECV_SIZE = 256 * 1024
# Payloads at least this large are read straight into their own buffer.
_DIRECT_READ = 1024 * 1024


class FrameError(Exception):
    """A frame violates the framing rules (too large, or cut short by end of stream)."""


def _check_size(n: int) -> None:
    if n > MAX_FRAME:
        raise FrameError(
            f"frame of {n} bytes exceeds the {MAX_FRAME}-byte limit; the connection is closed"
        )


def write_frame(sock: socket.socket, payload: bytes) -> None:
    """Send one frame (blocking)."""
    n = len(payload)
    _check_size(n)
    if n < 65536:
        sock.sendall(encode_header(n) + payload)
    else:
        sock.sendall(encode_header(n))
        sock.sendall(payload)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            if got == 0:
                return None
            raise FrameError(f"stream ended {n - got} bytes before the end of a frame")
        got += k
    return bytes(buf)


def read_frame(sock: socket.socket) -> bytes | None:
    """Read one frame (blocking, reads nothing beyond it). ``None`` at a clean end of
    stream; :class:`FrameError` when the stream ends inside a frame or a frame is too big."""
    head = _recv_exact(sock, 4)
    if head is None:
        return None
    (n,) = _unpack_header(head)
    _check_size(n)
    if n == 0:
        return b""
    payload = _recv_exact(sock, n)
    if payload is None:
        raise FrameError(f"stream ended before the {n}-byte payload of a frame")
    return payload


class FrameReader:
    """Buffered frame reader over a blocking socket, for the connection's reader thread.

    Small frames are cut from one reused receive buffer; a large frame is read straight
    into a buffer of its own.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray(_RECV_SIZE)
        self._view = memoryview(self._buf)
        self._start = 0
        self._end = 0

    def read(self) -> bytes | bytearray | None:
        """The next frame's payload; ``None`` at a clean end of stream."""
        while True:
            start = self._start
            avail = self._end - start
            if avail >= 4:
                (n,) = _unpack_header(self._buf, start)
                _check_size(n)
                if avail >= 4 + n:
                    payload = self._view[start + 4 : start + 4 + n].tobytes()
                    start += 4 + n
                    if start == self._end:
                        self._start = self._end = 0
                    else:
                        self._start = start
                    return payload
                if n >= _DIRECT_READ:
                    return self._read_large(n)
                if 4 + n > len(self._buf) - start:
                    self._make_room(4 + n)
            elif self._end == len(self._buf):
                self._make_room(4)
            k = self._sock.recv_into(self._view[self._end :])
            if k == 0:
                if self._end - self._start:
                    raise FrameError("stream ended inside a frame")
                return None
            self._end += k

    def _make_room(self, need: int) -> None:
        """Move the unread bytes to the front, in a larger buffer if ``need`` asks for it."""
        data = self._view[self._start : self._end].tobytes()
        if need > len(self._buf):
            self._view.release()
            self._buf = bytearray(max(need, 2 * len(self._buf)))
            self._view = memoryview(self._buf)
        self._buf[: len(data)] = data
        self._start = 0
        self._end = len(data)

    def _read_large(self, n: int) -> bytearray:
        start = self._start + 4
        have = self._end - start
        out = bytearray(n)
        out[:have] = self._view[start : self._end]
        self._start = self._end = 0
        view = memoryview(out)
        got = have
        while got < n:
            k = self._sock.recv_into(view[got:], n - got)
            if k == 0:
                raise FrameError(f"stream ended {n - got} bytes before the end of a frame")
            got += k
        view.release()
        return out
