"""Segments mapped into this process, and when a tensor's bytes can be re-sent unchanged.

A reader maps a segment copy-on-write (``MAP_PRIVATE``): reads share the producer's pages,
a write into the tensor changes only the reader's own copy. A mapped tensor that is sent on
unchanged (same storage, same version counter, no page of its mapping written, as
``/proc/self/pagemap`` tells) is re-sent as the same segment, so a tensor that travels
through several processes is written once.
"""

from __future__ import annotations

import mmap
import os
import threading
from typing import Any

from .segments import TensorCrossingError, segment_path, shm_dir

__all__ = ["MAPPED", "MAPPED_NP", "Mapping", "element_span", "forget", "map_segment", "mapped_lock", "reusable"]

_PAGE = mmap.PAGESIZE


class Mapping:
    """A segment mapped copy-on-write into this process."""

    __slots__ = ("segment", "addr", "size", "version_of", "__weakref__")

    def __init__(self, segment: str, addr: int, size: int, version_of: Any) -> None:
        self.segment = segment
        self.addr = addr  # address of segment byte 0
        self.size = size
        self.version_of = version_of  # weakref to the base tensor/array (for torch: its version)


# Storage start address -> (mapping, version counter at decode), for mapped torch tensors, and
# id(mmap object) -> (mapping, 0) for mapped numpy arrays. Entries leave with their mmap.
MAPPED: dict[int, tuple[Mapping, int]] = {}
MAPPED_NP: dict[int, tuple[Mapping, int]] = {}
mapped_lock = threading.Lock()
_pagemap_fd: int | None = None
_pagemap_ok = True


def forget(table: dict[int, tuple[Mapping, int]], key: int) -> None:
    """Drop ``key`` from ``table`` (its mmap is gone)."""
    with mapped_lock:
        table.pop(key, None)


def map_segment(segment: str, size: int) -> mmap.mmap:
    """The first ``size`` bytes of ``segment``, mapped copy-on-write."""
    try:
        fd = os.open(segment_path(segment), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise TensorCrossingError(
            f"Tensor segment {segment} is gone from {shm_dir()}: it was released before this process "
            "mapped it. The value that holds it must stay retained by the host while it is passed on."
        ) from None
    try:
        return mmap.mmap(fd, size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)


def _after_fork() -> None:
    # /proc/self/pagemap was opened for the parent; the child must open its own.
    global _pagemap_fd
    _pagemap_fd = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


# Per byte of a pagemap entry's top byte: 1 when the page was written (present and no longer
# the file's page, or swapped out), else 0.
_DIRTY = bytes(1 if (b & 0xA0) == 0x80 or (b & 0x40) else 0 for b in range(256))


def _pages_written(addr: int, length: int) -> bool | None:
    """Whether any page of [addr, addr+length) of a private mapping was written; None when
    ``/proc/self/pagemap`` cannot be read."""
    global _pagemap_fd, _pagemap_ok
    if not _pagemap_ok:
        return None
    if length <= 0:
        return False
    try:
        if _pagemap_fd is None:
            _pagemap_fd = os.open("/proc/self/pagemap", os.O_RDONLY | os.O_CLOEXEC)
        first = addr // _PAGE
        last = (addr + length - 1) // _PAGE
        want = (last - first + 1) * 8
        data = bytearray()
        while len(data) < want:
            chunk = os.pread(_pagemap_fd, want - len(data), first * 8 + len(data))
            if not chunk:
                return None
            data += chunk
    except OSError:
        _pagemap_ok = False
        return None
    return b"\x01" in bytes(data[7::8]).translate(_DIRTY)


def reusable(hit: tuple[Mapping, int] | None, version: int, start: int, length: int,
              versioned: bool) -> tuple[str, int] | None:
    """(segment, offset) under which the bytes [start, start+length) of a mapped storage can be
    re-sent unchanged, or None. ``hit`` is the mapping and the version counter at decode."""
    if hit is None:
        return None
    m, v = hit
    if version != v or start < m.addr or start + length > m.addr + m.size:
        return None
    written = _pages_written(start, length)
    if written or (written is None and not versioned):
        return None
    if not os.path.exists(segment_path(m.segment)):
        return None  # the host released it meanwhile
    return m.segment, start - m.addr


def element_span(shape: list[int], strides: list[int]) -> tuple[int, int]:
    """(lowest, highest) element offsets a strided view reaches (relative to element 0)."""
    lo = hi = 0
    for n, st in zip(shape, strides):
        if n == 0:
            return 0, -1
        if st >= 0:
            hi += (n - 1) * st
        else:
            lo += (n - 1) * st
    return lo, hi
