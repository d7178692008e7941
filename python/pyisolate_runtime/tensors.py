"""Tensors across processes: CPU tensors and numpy arrays as shared-memory segments, CUDA
tensors as CUDA IPC handles.

A CPU tensor is written once into a new ``/dev/shm/pyisolate-<hostid>/pyisolate-<hostid>-<random>`` file
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

This module is the tensor extension the runtime loads (:func:`setup`) and the API packs
and tools import; the parts are in ``values/``: ``segments.py`` (the shared-memory files),
``mappings.py`` (mapped segments and re-sending them unchanged), ``torch_tensors.py``
(CPU and CUDA tensors), ``ndarrays.py`` (numpy arrays) and ``libs.py`` (torch and numpy,
seen without importing them).
"""

from __future__ import annotations

from typing import Any

from .values import libs
from .values.ndarrays import decode_ndarray, encode_ndarray
from .values.segments import (
    ALIVE_SOCKET,
    PREFIX,
    SharedMemoryFullError,
    TensorCrossingError,
    host_dir,
    host_id,
    host_pid,
    list_segments,
    segment_path,
    shm_dir,
    sweep_dead_hosts,
    unlink_segment,
)
from .values.torch_tensors import decode_tensor, encode_tensor

__all__ = [
    "ALIVE_SOCKET",
    "PREFIX",
    "TAG_NDARRAY",
    "TAG_TENSOR",
    "SharedMemoryFullError",
    "TensorCrossingError",
    "decode_ndarray",
    "decode_tensor",
    "encode_ndarray",
    "encode_tensor",
    "host_dir",
    "host_id",
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

_set_up = False


def setup(rt: Any = None) -> None:
    """Teaches the runtime's CBOR codec tags 41501 (tensor) and 41505 (numpy array). Called by
    the runtime at start-up; calling it again does nothing."""
    global _set_up
    if _set_up:
        return
    from . import cbor

    cbor.register_encoder_predicate(libs.is_torch_tensor, lambda t: (TAG_TENSOR, encode_tensor(t)))
    cbor.register_encoder_predicate(libs.is_ndarray, lambda a: (TAG_NDARRAY, encode_ndarray(a)))
    cbor.register_tag(TAG_TENSOR, decode_tensor)
    cbor.register_tag(TAG_NDARRAY, decode_ndarray)
    _set_up = True
