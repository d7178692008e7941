"""Shared-memory segments: the files under ``/dev/shm`` that tensor bytes cross in.

A segment is written once by its producer, under ``pyisolate-<hostpid>-<random>``, and
allocated up front with ``posix_fallocate``, so a full tmpfs is
:class:`SharedMemoryFullError`, never a SIGBUS. The host owns segment lifetimes and unlinks
them; the runtime never unlinks a segment it has sent.
"""

from __future__ import annotations

import ctypes
import errno
import os
import secrets

__all__ = [
    "PREFIX",
    "SharedMemoryFullError",
    "TensorCrossingError",
    "host_pid",
    "list_segments",
    "segment_path",
    "shm_dir",
    "sweep_dead_hosts",
    "unlink_segment",
    "write_segment",
]

PREFIX = "pyisolate-"
"""Every segment's file name starts with this, then the host pid and a dash."""

_WRITE_CHUNK = 1 << 30


class SharedMemoryFullError(OSError):
    """The shared-memory filesystem has no room for a tensor's segment."""


class TensorCrossingError(TypeError):
    """A tensor or array that has no cross-process form (sparse, object dtype, meta device, …)."""


# Reported (and found again by restore_exception) under the name they are imported by.
SharedMemoryFullError.__module__ = TensorCrossingError.__module__ = "pyisolate_runtime.tensors"


def shm_dir() -> str:
    """The directory segments live in: ``PYISOLATE_SHM_DIR``, default ``/dev/shm``."""
    return os.environ.get("PYISOLATE_SHM_DIR") or "/dev/shm"


def host_pid() -> int:
    """The pid segment names carry: ``PYISOLATE_HOST_PID`` (set by the host), else our own."""
    raw = os.environ.get("PYISOLATE_HOST_PID")
    return int(raw) if raw else os.getpid()


def segment_path(name: str) -> str:
    """The file of segment ``name``."""
    if "/" in name or not name.startswith(PREFIX):
        raise ValueError(f"{name!r} is not a pyisolate segment name")
    return os.path.join(shm_dir(), name)


def list_segments(pid: int | None = None) -> list[str]:
    """Names of the segments in :func:`shm_dir` (of host ``pid`` only, when given)."""
    want = f"{PREFIX}{pid}-" if pid is not None else PREFIX
    try:
        return sorted(n for n in os.listdir(shm_dir()) if n.startswith(want))
    except FileNotFoundError:
        return []


def unlink_segment(name: str) -> bool:
    """Removes segment ``name``; False when it was already gone. Mappings stay valid."""
    try:
        os.unlink(segment_path(name))
        return True
    except FileNotFoundError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_dead_hosts() -> list[str]:
    """Removes segments whose host pid is no longer alive; returns their names."""
    removed = []
    for name in list_segments():
        pid_part = name[len(PREFIX):].split("-", 1)[0]
        if not pid_part.isdigit():
            continue
        try:
            gone = not _pid_alive(int(pid_part)) and unlink_segment(name)
        except OSError:  # not a segment file (a directory, another user's): left alone
            continue
        if gone:
            removed.append(name)
    return removed


def _human(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"


def _create_segment(nbytes: int, what: str) -> tuple[str, int]:
    """A new segment of exactly ``nbytes`` bytes, allocated up front; returns (name, fd)."""
    directory = shm_dir()
    name = f"{PREFIX}{host_pid()}-{secrets.token_hex(8)}"
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.posix_fallocate(fd, 0, nbytes)
    except OSError as e:
        os.close(fd)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        if e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            try:
                st = os.statvfs(directory)
                free = f"; {_human(st.f_bavail * st.f_frsize)} are free there"
            except OSError:
                free = ""
            raise SharedMemoryFullError(
                e.errno,
                f"Not enough shared memory in {directory} for {what} ({_human(nbytes)}){free}. "
                "Free memory, enlarge the filesystem (docker: --shm-size), or set PYISOLATE_SHM_DIR "
                "to a larger tmpfs.",
            ) from None
        raise
    return name, fd


def _write_all(fd: int, addr: int, nbytes: int) -> None:
    view = memoryview((ctypes.c_char * nbytes).from_address(addr)).cast("B")
    off = 0
    while off < nbytes:
        off += os.write(fd, view[off : off + _WRITE_CHUNK])


def write_segment(addr: int, nbytes: int, what: str) -> str:
    """A new segment holding the ``nbytes`` bytes at address ``addr``; returns its name.
    ``what`` describes the value in the error when shared memory is full."""
    name, fd = _create_segment(nbytes, what)
    try:
        _write_all(fd, addr, nbytes)
    except BaseException:
        os.close(fd)
        unlink_segment(name)
        raise
    os.close(fd)
    return name
