"""Tensors across processes: CPU tensors and numpy arrays as shared-memory segments, CUDA
tensors as CUDA IPC handles.

A CPU tensor is written once into a new ``/dev/shm/pyisolate-<hostpid>-<random>`` file
(allocated with ``posix_fallocate``, so a full tmpfs is :class:`SharedMemoryFullError`, never a
SIGBUS) and crosses as CBOR tag 41501 with the map
``{segment, offset, nbytes, dtype, shape, strides, device}``; a numpy array crosses as tag
41505 ``[numpy dtype str, map]``. ``offset`` is the byte offset in the segment where the bytes
the tensor spans begin, ``nbytes`` their length, ``strides`` count elements.

A reader maps the segment copy-on-write (``MAP_PRIVATE``): reads share the producer's pages, a
write into the tensor changes only the reader's own copy. A mapped tensor that is sent on
unchanged (same storage, same version counter, no page of its mapping written) is re-sent as
the same segment, so a tensor that travels through several processes is written once. The host
owns segment lifetimes and unlinks them; this module never unlinks a segment it has sent.

torch and numpy are imported only when a tensor or array is actually encoded or decoded.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import secrets
import sys
import threading
import weakref
from typing import Any

__all__ = [
    "PREFIX",
    "TAG_NDARRAY",
    "TAG_TENSOR",
    "SharedMemoryFullError",
    "TensorCrossingError",
    "decode_ndarray",
    "decode_tensor",
    "encode_ndarray",
    "encode_tensor",
    "host_pid",
    "list_segments",
    "segment_path",
    "setup",
    "shm_dir",
    "sweep_dead_hosts",
    "unlink_segment",
]

TAG_TENSOR = 41501
"""CBOR tag of a torch tensor (content: the TensorRef map)."""
TAG_NDARRAY = 41505
"""CBOR tag of a numpy array (content: ``[numpy dtype str, TensorRef map]``)."""
PREFIX = "pyisolate-"
"""Every segment's file name starts with this, then the host pid and a dash."""

_PAGE = mmap.PAGESIZE
_WRITE_CHUNK = 1 << 30


class SharedMemoryFullError(OSError):
    """The shared-memory filesystem has no room for a tensor's segment."""


class TensorCrossingError(TypeError):
    """A tensor or array that has no cross-process form (sparse, object dtype, meta device, …)."""


# --------------------------------------------------------------------------- segments


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
        if not _pid_alive(int(pid_part)) and unlink_segment(name):
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


def _write_segment(addr: int, nbytes: int, what: str) -> str:
    name, fd = _create_segment(nbytes, what)
    try:
        _write_all(fd, addr, nbytes)
    except BaseException:
        os.close(fd)
        unlink_segment(name)
        raise
    os.close(fd)
    return name


# --------------------------------------------------------------------------- mappings

class _Mapping:
    """A segment mapped copy-on-write into this process."""

    __slots__ = ("segment", "addr", "size", "version_of", "__weakref__")

    def __init__(self, segment: str, addr: int, size: int, version_of: Any) -> None:
        self.segment = segment
        self.addr = addr  # address of segment byte 0
        self.size = size
        self.version_of = version_of  # weakref to the base tensor/array (for torch: its version)


# Storage start address -> (mapping, version counter at decode), for mapped torch tensors, and
# id(mmap object) -> (mapping, 0) for mapped numpy arrays. Entries leave with their mmap.
_MAPPED: dict[int, tuple[_Mapping, int]] = {}
_MAPPED_NP: dict[int, tuple[_Mapping, int]] = {}
_lock = threading.Lock()
_pagemap_fd: int | None = None
_pagemap_ok = True


def _forget(table: dict[int, tuple[_Mapping, int]], key: int) -> None:
    with _lock:
        table.pop(key, None)


def _map_segment(segment: str, size: int) -> mmap.mmap:
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


def _reusable(hit: tuple[_Mapping, int] | None, version: int, start: int, length: int,
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
    if not os.path.exists(os.path.join(shm_dir(), m.segment)):
        return None  # the host released it meanwhile
    return m.segment, start - m.addr


# --------------------------------------------------------------------------- torch


def _torch() -> Any:
    torch = sys.modules.get("torch")
    if torch is None:
        import torch  # noqa: PLC0415 - imported only when a tensor is actually decoded
    return torch


def _torch_dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def _torch_dtype(name: str) -> Any:
    torch = _torch()
    dt = getattr(torch, name, None)
    if not isinstance(dt, torch.dtype):
        raise TensorCrossingError(f"Tensor dtype {name!r} is not known to torch {torch.__version__}.")
    return dt


def _span(shape: list[int], strides: list[int]) -> tuple[int, int]:
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


def _describe(dtype: str, shape: list[int]) -> str:
    return f"a {dtype} tensor of shape {shape}"


def encode_tensor(t: Any) -> dict[str, Any]:
    """The TensorRef map for torch tensor ``t`` (writes a segment unless ``t`` is an unchanged
    mapped tensor or lives on a CUDA device)."""
    torch = _torch()
    if t.layout != torch.strided:
        raise TensorCrossingError(
            f"A {t.layout} tensor cannot cross a process boundary; convert it with .to_dense() first."
        )
    if t.is_quantized:
        raise TensorCrossingError("A quantized tensor cannot cross a process boundary; dequantize it first.")
    t = t.detach()
    if t.is_conj():
        t = t.resolve_conj()
    if t.is_neg():
        t = t.resolve_neg()
    if t.device.type == "cuda":
        return _encode_cuda(t)
    if t.device.type == "meta":
        raise TensorCrossingError("A tensor on the meta device has no data and cannot cross a process boundary.")
    if t.device.type != "cpu":
        t = t.cpu()
    dtype = _torch_dtype_name(t.dtype)
    shape = list(t.shape)
    strides = list(t.stride())
    item = t.element_size()
    numel = t.numel()
    ref: dict[str, Any] = {"segment": "", "offset": 0, "nbytes": 0, "dtype": dtype, "shape": shape,
                           "strides": strides, "device": "cpu"}
    if numel == 0:
        return ref
    lo, hi = _span(shape, strides)  # lo == 0: torch strides are never negative
    span = hi - lo + 1
    if not t.is_contiguous() and span > 2 * numel:
        # A sparse view of a larger storage: send its values compactly.
        t = t.contiguous()
        strides = list(t.stride())
        span = numel
        ref["strides"] = strides
    nbytes = span * item
    start = t.data_ptr()
    with _lock:
        hit = _MAPPED.get(t.untyped_storage().data_ptr())
    reuse = _reusable(hit, t._version, start, nbytes, True)
    if reuse is not None:
        ref["segment"], ref["offset"] = reuse
        ref["nbytes"] = nbytes
        return ref
    ref["segment"] = _write_segment(start, nbytes, _describe(dtype, shape))
    ref["nbytes"] = nbytes
    return ref


def decode_tensor(ref: dict[str, Any]) -> Any:
    """The tensor a TensorRef map describes: mapped copy-on-write from its segment, opened
    from its CUDA IPC handle, or — where torch is missing — a numpy array."""
    device = ref.get("device", "cpu")
    if device != "cpu":
        return _decode_cuda(ref)
    try:
        torch = _torch()
    except ImportError:
        return decode_ndarray([ref["dtype"], ref])
    dtype = _torch_dtype(ref["dtype"])
    shape = [int(x) for x in ref["shape"]]
    strides = [int(x) for x in ref["strides"]]
    nbytes = int(ref["nbytes"])
    if not ref.get("segment") or nbytes == 0:
        return torch.empty_strided(shape, strides, dtype=dtype)
    offset = int(ref["offset"])
    mm = _map_segment(ref["segment"], offset + nbytes)
    item = dtype.itemsize
    base = torch.frombuffer(mm, dtype=dtype, count=nbytes // item, offset=offset)
    t = base.as_strided(shape, strides)
    addr = base.data_ptr() - offset
    key = base.untyped_storage().data_ptr()
    info = _Mapping(ref["segment"], addr, offset + nbytes, None)
    with _lock:
        _MAPPED[key] = (info, t._version)
    weakref.finalize(mm, _forget, _MAPPED, key)
    return t


# --------------------------------------------------------------------------- CUDA


def _encode_cuda(t: Any) -> dict[str, Any]:
    import inspect

    from torch.multiprocessing.reductions import rebuild_cuda_tensor, reduce_tensor

    _, args = reduce_tensor(t)
    names = list(inspect.signature(rebuild_cuda_tensor).parameters)
    fields = dict(zip(names, args))
    ipc: dict[str, Any] = {}
    for k, v in fields.items():
        if k in ("tensor_cls", "tensor_size", "tensor_stride", "dtype", "requires_grad"):
            continue
        if k == "storage_cls":
            ipc[k] = v.__name__
        elif isinstance(v, (bytes, bool, int, str)) or v is None:
            ipc[k] = v
        else:
            ipc[k] = int(v)
    return {
        "segment": "",
        "offset": int(fields.get("tensor_offset", t.storage_offset())) * t.element_size(),
        "nbytes": 0,
        "dtype": _torch_dtype_name(t.dtype),
        "shape": list(t.shape),
        "strides": list(t.stride()),
        "device": f"cuda:{t.device.index if t.device.index is not None else 0}",
        "cuda": ipc,
    }


def _decode_cuda(ref: dict[str, Any]) -> Any:
    torch = _torch()
    device = ref["device"]
    if not device.startswith("cuda"):
        raise TensorCrossingError(f"A tensor on device {device!r} cannot be received here.")
    if not torch.cuda.is_available():
        raise TensorCrossingError(
            f"A tensor on {device} arrived, but this process has no CUDA (torch {torch.__version__}); "
            "move it to the CPU before it crosses, or run this pack with a CUDA build of torch."
        )
    import inspect

    from torch.multiprocessing.reductions import rebuild_cuda_tensor

    ipc = dict(ref["cuda"])
    storage_cls_name = ipc.get("storage_cls", "TypedStorage")
    storage_cls = getattr(torch.storage, storage_cls_name, None) or getattr(torch, storage_cls_name)
    values = {
        "tensor_cls": torch.Tensor,
        "tensor_size": torch.Size(int(x) for x in ref["shape"]),
        "tensor_stride": tuple(int(x) for x in ref["strides"]),
        "dtype": _torch_dtype(ref["dtype"]),
        "requires_grad": False,
        **ipc,
        "storage_cls": storage_cls,
    }
    names = list(inspect.signature(rebuild_cuda_tensor).parameters)
    return rebuild_cuda_tensor(*[values[n] for n in names])


# --------------------------------------------------------------------------- numpy


def _numpy() -> Any:
    np = sys.modules.get("numpy")
    if np is None:
        import numpy as np  # noqa: PLC0415 - imported only when an array is actually decoded
    return np


def encode_ndarray(a: Any) -> list[Any]:
    """The tag-41505 content ``[numpy dtype str, TensorRef map]`` for numpy array ``a``."""
    np = _numpy()
    if a.dtype.hasobject:
        raise TensorCrossingError(
            f"A numpy array of dtype {a.dtype} holds Python objects and cannot cross a process boundary."
        )
    item = a.dtype.itemsize
    if item == 0 or any(s % item for s in a.strides):
        a = np.ascontiguousarray(a)
    shape = [int(x) for x in a.shape]
    strides = [int(s) // item for s in a.strides] if item else [0] * a.ndim
    ref: dict[str, Any] = {"segment": "", "offset": 0, "nbytes": 0, "dtype": a.dtype.name, "shape": shape,
                           "strides": strides, "device": "cpu"}
    if a.size == 0:
        return [a.dtype.str, ref]
    lo, hi = _span(shape, strides)
    span = hi - lo + 1
    if span > 2 * a.size:
        a = np.ascontiguousarray(a)
        strides = [int(s) // item for s in a.strides]
        ref["strides"] = strides
        lo, span = 0, a.size
    nbytes = span * item
    start = a.__array_interface__["data"][0] + lo * item
    base = a
    while isinstance(getattr(base, "base", None), np.ndarray):
        base = base.base
    mapped = getattr(base, "base", None)
    reuse = None
    if isinstance(mapped, mmap.mmap):
        with _lock:
            hit = _MAPPED_NP.get(id(mapped))
        reuse = _reusable(hit, 0, start, nbytes, False)
    if reuse is not None:
        ref["segment"], ref["offset"] = reuse
    else:
        ref["segment"] = _write_segment(start, nbytes, f"a {a.dtype} array of shape {shape}")
    ref["nbytes"] = nbytes
    return [a.dtype.str, ref]


def decode_ndarray(content: list[Any]) -> Any:
    """The numpy array a tag-41505 content describes, mapped copy-on-write."""
    np = _numpy()
    dtype_str, ref = content
    try:
        dtype = np.dtype(dtype_str)
    except TypeError:
        raise TensorCrossingError(
            f"An array of dtype {dtype_str!r} arrived, which numpy {np.__version__} does not know."
        ) from None
    shape = tuple(int(x) for x in ref["shape"])
    strides = [int(x) for x in ref["strides"]]
    nbytes = int(ref["nbytes"])
    if not ref.get("segment") or nbytes == 0:
        return np.empty(shape, dtype=dtype)
    item = dtype.itemsize
    offset = int(ref["offset"])
    lo, _ = _span(list(shape), strides)
    mm = _map_segment(ref["segment"], offset + nbytes)
    whole = np.frombuffer(mm, dtype=np.uint8)
    a = np.ndarray(shape, dtype=dtype, buffer=mm, offset=offset - lo * item, strides=[s * item for s in strides])
    info = _Mapping(ref["segment"], whole.__array_interface__["data"][0], offset + nbytes, None)
    del whole
    key = id(mm)
    with _lock:
        _MAPPED_NP[key] = (info, 0)
    weakref.finalize(mm, _forget, _MAPPED_NP, key)
    return a


# --------------------------------------------------------------------------- codec wiring


def _is_tensor(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.Tensor)


def _is_ndarray(obj: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, np.ndarray)


_set_up = False


def setup(rt: Any = None) -> None:
    """Teaches the runtime's CBOR codec tags 41501 (tensor) and 41505 (numpy array). Called by
    the runtime at start-up; calling it again does nothing."""
    global _set_up
    if _set_up:
        return
    from . import cbor

    cbor.register_encoder_predicate(_is_tensor, lambda t: (TAG_TENSOR, encode_tensor(t)))
    cbor.register_encoder_predicate(_is_ndarray, lambda a: (TAG_NDARRAY, encode_ndarray(a)))
    cbor.register_tag(TAG_TENSOR, decode_tensor)
    cbor.register_tag(TAG_NDARRAY, decode_ndarray)
    _set_up = True
