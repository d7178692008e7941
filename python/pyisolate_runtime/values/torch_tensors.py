"""Torch tensors across processes: CPU tensors through shared-memory segments, CUDA
tensors through CUDA IPC handles.

A CPU tensor crosses as CBOR tag 41501 with the TensorRef map
``{segment, offset, nbytes, dtype, shape, strides, device}``: ``offset`` is the byte offset
in the segment where the bytes the tensor spans begin, ``nbytes`` their length, ``strides``
count elements. A CUDA tensor crosses with an empty segment and a ``cuda`` map of its IPC
handle. torch is imported only when a tensor is actually decoded.
"""

from __future__ import annotations

import weakref
from typing import Any

from . import libs
from .mappings import MAPPED, Mapping, element_span, forget, map_segment, mapped_lock, reusable
from .ray_segments import done as fetched_done
from .ray_segments import local_segment, origin
from .ndarrays import decode_ndarray
from .segments import TensorCrossingError, write_segment

__all__ = ["decode_tensor", "encode_tensor"]


def _torch_dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def _torch_dtype(name: str) -> Any:
    torch = libs.import_torch()
    dt = getattr(torch, name, None)
    if not isinstance(dt, torch.dtype):
        raise TensorCrossingError(f"Tensor dtype {name!r} is not known to torch {torch.__version__}.")
    return dt


def _describe(dtype: str, shape: list[int]) -> str:
    return f"a {dtype} tensor of shape {shape}"


def encode_tensor(t: Any) -> dict[str, Any]:
    """The TensorRef map for torch tensor ``t`` (writes a segment unless ``t`` is an unchanged
    mapped tensor or lives on a CUDA device)."""
    torch = libs.import_torch()
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
    lo, hi = element_span(shape, strides)  # lo == 0: torch strides are never negative
    span = hi - lo + 1
    if not t.is_contiguous() and span > 2 * numel:
        # A sparse view of a larger storage: send its values compactly.
        t = t.contiguous()
        strides = list(t.stride())
        span = numel
        ref["strides"] = strides
    nbytes = span * item
    start = t.data_ptr()
    with mapped_lock:
        hit = MAPPED.get(t.untyped_storage().data_ptr())
    reuse = reusable(hit, t._version, start, nbytes, True)
    if reuse is not None:
        ref["segment"], ref["offset"] = reuse
    else:
        ref["segment"] = write_segment(start, nbytes, _describe(dtype, shape))
    ref["nbytes"] = nbytes
    where = origin()
    if where is not None:
        ref["ray"] = where
    return ref


def decode_tensor(ref: dict[str, Any]) -> Any:
    """The tensor a TensorRef map describes: mapped copy-on-write from its segment, opened
    from its CUDA IPC handle, or — where torch is missing — a numpy array."""
    device = ref.get("device", "cpu")
    if device != "cpu":
        return _decode_cuda(ref)
    try:
        torch = libs.import_torch()
    except ImportError:
        return decode_ndarray([ref["dtype"], ref])
    dtype = _torch_dtype(ref["dtype"])
    shape = [int(x) for x in ref["shape"]]
    strides = [int(x) for x in ref["strides"]]
    nbytes = int(ref["nbytes"])
    if not ref.get("segment") or nbytes == 0:
        return torch.empty_strided(shape, strides, dtype=dtype)
    segment, offset, fetched = local_segment(ref, _describe(ref["dtype"], shape))
    try:
        mm = map_segment(segment, offset + nbytes)
    finally:
        if fetched:
            fetched_done(segment)
    item = dtype.itemsize
    base = torch.frombuffer(mm, dtype=dtype, count=nbytes // item, offset=offset)
    t = base.as_strided(shape, strides)
    addr = base.data_ptr() - offset
    key = base.untyped_storage().data_ptr()
    info = Mapping(segment, addr, offset + nbytes, None)
    with mapped_lock:
        MAPPED[key] = (info, t._version)
    weakref.finalize(mm, forget, MAPPED, key)
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
    torch = libs.import_torch()
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
