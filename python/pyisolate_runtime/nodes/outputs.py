"""A node's outputs, encoded in the node's own thread before its answer is sent.

Encoding writes tensors into shared memory, which can fail (a full ``/dev/shm``, a value with
no cross-process form, a list nested too deeply). Done here, output by output, the failure is
an error of this node that names the node and the output, its segments written so far are
removed, and the answer (an error) still goes out: the caller never waits for an answer that
cannot come. The encoded outputs are :class:`~pyisolate_runtime.cbor.Raw` items, spliced into
the answer as they are.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from pyisolate_runtime import host
from pyisolate_runtime.cbor import Raw, dumps
from pyisolate_runtime.values.segments import unlink_on_error

__all__ = ["encode_outputs"]


def _default() -> Any:
    ep = host._endpoint
    return ep._default if ep is not None else None


def _describe(cls: Any, index: int) -> str:
    types = list(getattr(cls, "RETURN_TYPES", ()) or ())
    names = list(getattr(cls, "RETURN_NAMES", None) or types)
    io_type = types[index] if index < len(types) and isinstance(types[index], str) else "*"
    name = str(names[index]) if index < len(names) else str(index)
    return f"output {index} ({name}, {io_type})" if name != io_type else f"output {index} ({io_type})"


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


def _same_kind(e: BaseException, message: str) -> BaseException:
    """An exception of ``e``'s type with ``message`` (OSError subclasses keep their errno)."""
    try:
        if isinstance(e, OSError):
            return type(e)(e.errno, message)
        return type(e)(message)
    except Exception:
        return TypeError(message)


def encode_outputs(class_type: str, cls: Any, node_id: Optional[str], result: Dict[str, Any], pack: Optional[str] = None) -> Dict[str, Any]:
    """``{"result": [Raw per output], "ui": Raw | None}`` for a node's ``execute`` answer.
    Raises an error naming the node, its pack and the output that cannot be sent."""
    default = _default()
    node = f"Node {class_type}" + (f" (#{node_id})" if node_id is not None else "") + (f" of pack {pack}" if pack else "")
    with unlink_on_error():
        outputs = []
        for i, values in enumerate(result.get("result") or []):
            try:
                outputs.append(Raw(dumps(values, default), values))
            except Exception as e:
                raise _same_kind(e, f"{node}: {_describe(cls, i)} cannot be sent to the host: {_reason(e)}") from e
        ui = result.get("ui")
        if ui is not None:
            try:
                ui = Raw(dumps(ui, default), ui)
            except Exception as e:
                raise _same_kind(e, f"{node}: its ui output cannot be sent to the host: {_reason(e)}") from e
    return {"result": outputs, "ui": ui}
