"""Shared-memory segments: the files under ``/dev/shm`` that tensor bytes cross in.

Each host has a folder of its own there, ``pyisolate-<hostid>/`` (``hostid`` is random per
host, given to children as ``PYISOLATE_HOST_ID``), and a segment is a file in it named
``pyisolate-<hostid>-<random>``: the name alone says where it lives. A segment is written
once by its producer and allocated up front with ``posix_fallocate``, so a full tmpfs is
:class:`SharedMemoryFullError`, never a SIGBUS. The host owns segment lifetimes and unlinks
them; the runtime never unlinks a segment it has sent. The host's folder also holds its
liveness socket (``alive``): a folder whose socket refuses connections belongs to a host that
is gone, which is the only case :func:`sweep_dead_hosts` removes it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import secrets
import shutil
import socket
import stat
import threading
from typing import Iterator

__all__ = [
    "ALIVE_SOCKET",
    "PREFIX",
    "SharedMemoryFullError",
    "TensorCrossingError",
    "host_dir",
    "host_id",
    "host_pid",
    "list_segments",
    "segment_path",
    "shm_dir",
    "sweep_dead_hosts",
    "unlink_on_error",
    "unlink_segment",
    "write_segment",
]

PREFIX = "pyisolate-"
"""Every host folder and segment name starts with this, then the host id."""

ALIVE_SOCKET = "alive"
"""The host's liveness socket, in its folder: it accepts connections while the host lives."""

_NAME = re.compile(r"pyisolate-([0-9A-Za-z]+)-[0-9A-Za-z]+")
_WRITE_CHUNK = 1 << 30


class SharedMemoryFullError(OSError):
    """The shared-memory filesystem has no room for a tensor's segment."""


class TensorCrossingError(TypeError):
    """A tensor or array that has no cross-process form (sparse, object dtype, meta device, …)."""


# Reported (and found again by restore_exception) under the name they are imported by.
SharedMemoryFullError.__module__ = TensorCrossingError.__module__ = "pyisolate_runtime.tensors"


def shm_dir() -> str:
    """The directory the hosts' segment folders live in: ``PYISOLATE_SHM_DIR``, default ``/dev/shm``."""
    return os.environ.get("PYISOLATE_SHM_DIR") or "/dev/shm"


def host_id() -> str:
    """The id segment names carry: ``PYISOLATE_HOST_ID`` (set by the host), else
    ``PYISOLATE_HOST_PID``, else this process's pid."""
    return os.environ.get("PYISOLATE_HOST_ID") or os.environ.get("PYISOLATE_HOST_PID") or str(os.getpid())


def host_pid() -> int:
    """The host's pid (``PYISOLATE_HOST_PID``), else our own."""
    raw = os.environ.get("PYISOLATE_HOST_PID")
    return int(raw) if raw else os.getpid()


def host_dir(hid: str | int | None = None) -> str:
    """The folder of host ``hid``'s segments (this process's host by default)."""
    return os.path.join(shm_dir(), f"{PREFIX}{host_id() if hid is None else hid}")


def segment_path(name: str) -> str:
    """The file of segment ``name``."""
    m = _NAME.fullmatch(name) if isinstance(name, str) else None
    if m is None:
        raise ValueError(f"{name!r} is not a pyisolate segment name")
    return os.path.join(shm_dir(), f"{PREFIX}{m.group(1)}", name)


def list_segments(hid: str | int | None = None) -> list[str]:
    """Names of the segments of host ``hid`` (of every host folder when None)."""
    folders = [host_dir(hid)] if hid is not None else _host_folders()
    names: list[str] = []
    for folder in folders:
        try:
            names += [n for n in os.listdir(folder) if _NAME.fullmatch(n)]
        except (FileNotFoundError, NotADirectoryError):
            pass
    return sorted(names)


def _host_folders() -> list[str]:
    try:
        entries = os.listdir(shm_dir())
    except FileNotFoundError:
        return []
    base = shm_dir()
    return [os.path.join(base, n) for n in entries if n.startswith(PREFIX) and "-" not in n[len(PREFIX):]]


def unlink_segment(name: str) -> bool:
    """Removes segment ``name``; False when it was already gone. Mappings stay valid."""
    try:
        os.unlink(segment_path(name))
        return True
    except FileNotFoundError:
        return False


def _host_gone(folder: str) -> bool:
    """Whether the host of ``folder`` is provably gone: its liveness socket exists and
    refuses connections. A folder without one (or one that answers) is kept."""
    path = os.path.join(folder, ALIVE_SOCKET)
    try:
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            return False
    except OSError:
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2.0)
    try:
        s.connect(path)
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    finally:
        s.close()


def sweep_dead_hosts() -> list[str]:
    """Removes the folders of hosts that are provably gone; returns their segments' names."""
    removed: list[str] = []
    for folder in _host_folders():
        if folder == host_dir() or not _host_gone(folder):
            continue
        names = [n for n in os.listdir(folder) if _NAME.fullmatch(n)]
        shutil.rmtree(folder, ignore_errors=True)
        removed += names
    return sorted(removed)


def _human(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"


def _create_segment(nbytes: int, what: str) -> tuple[str, int]:
    """A new segment of exactly ``nbytes`` bytes, allocated up front; returns (name, fd)."""
    directory = host_dir()
    name = f"{PREFIX}{host_id()}-{secrets.token_hex(8)}"
    path = os.path.join(directory, name)
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except FileNotFoundError:
        # The host's folder is gone (cleaned away): make it again, inside an existing base.
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            pass
        except FileNotFoundError:
            raise FileNotFoundError(
                errno.ENOENT,
                f"The shared-memory folder {shm_dir()} does not exist, so {what} has nowhere to go. "
                "Create it, or set PYISOLATE_SHM_DIR to an existing tmpfs folder.",
            ) from None
        fd = os.open(path, flags, 0o600)
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
                f"Not enough shared memory in {shm_dir()} for {what} ({_human(nbytes)}){free}. "
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


_written = threading.local()


@contextlib.contextmanager
def unlink_on_error() -> Iterator[list[str]]:
    """Collects the segments this thread writes inside the block; when the block raises,
    unlinks them, so that a value that failed half-way through encoding leaves none behind."""
    outer = getattr(_written, "names", None)
    names: list[str] = []
    _written.names = names
    try:
        yield names
    except BaseException:
        for name in names:
            unlink_segment(name)
        raise
    finally:
        _written.names = outer
        if outer is not None:
            outer.extend(names)


def write_segment(addr: int, nbytes: int, what: str) -> str:
    """A new segment holding the ``nbytes`` bytes at address ``addr``; returns its name.
    ``what`` describes the value in the error when shared memory is full."""
    name, fd = _create_segment(nbytes, what)
    names = getattr(_written, "names", None)
    if names is not None:
        names.append(name)
    try:
        _write_all(fd, addr, nbytes)
    except BaseException:
        os.close(fd)
        unlink_segment(name)
        raise
    os.close(fd)
    return name
