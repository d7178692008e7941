"""numpy arrays across processes, for packs without torch: CBOR tag 41505 with the content
``[numpy dtype str, TensorRef map]`` (the map as for a tensor). numpy is imported only when
an array is actually decoded.
"""

from __future__ import annotations

import mmap
import weakref
from typing import Any

from . import libs
from .mappings import MAPPED_NP, Mapping, element_span, forget, map_segment, mapped_lock, reusable
from .ray_segments import done as fetched_done
from .ray_segments import local_segment, origin
from .segments import TensorCrossingError, write_segment

__all__ = ["decode_ndarray", "encode_ndarray"]


def encode_ndarray(a: Any) -> list[Any]:
    """The tag-41505 content ``[numpy dtype str, TensorRef map]`` for numpy array ``a``."""
    np = libs.import_numpy()
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
    lo, hi = element_span(shape, strides)
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
        with mapped_lock:
            hit = MAPPED_NP.get(id(mapped))
        reuse = reusable(hit, 0, start, nbytes, False)
    if reuse is not None:
        ref["segment"], ref["offset"] = reuse
    else:
        ref["segment"] = write_segment(start, nbytes, f"a {a.dtype} array of shape {shape}")
    ref["nbytes"] = nbytes
    where = origin()
    if where is not None:
        ref["ray"] = where
    return [a.dtype.str, ref]


def decode_ndarray(content: list[Any]) -> Any:
    """The numpy array a tag-41505 content describes, mapped copy-on-write."""
    np = libs.import_numpy()
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
    lo, _ = element_span(list(shape), strides)
    segment, offset, fetched = local_segment(ref, f"a numpy array ({dtype}, shape {list(shape)})")
    try:
        mm = map_segment(segment, offset + nbytes)
    finally:
        if fetched:
            fetched_done(segment)
    whole = np.frombuffer(mm, dtype=np.uint8)
    a = np.ndarray(shape, dtype=dtype, buffer=mm, offset=offset - lo * item, strides=[s * item for s in strides])
    info = Mapping(segment, whole.__array_interface__["data"][0], offset + nbytes, None)
    del whole
    key = id(mm)
    with mapped_lock:
        MAPPED_NP[key] = (info, 0)
    weakref.finalize(mm, forget, MAPPED_NP, key)
    return a
