"""Core mode: running a node through ComfyUI's own execution functions.

The host has already resolved the node's inputs into ComfyUI's input representation (each
input a list of values, see :mod:`pyisolate_runtime.nodes.nodes_exec`). From there this
module does what ComfyUI's ``execution.py`` does with them: the hidden inputs as
``get_input_data`` fills them (V1 keyword arguments, V3 ``cls.hidden``), the V3 class clone
and dynamic-input nesting (``_io.get_finalized_class_inputs``), the per-index mapping
(``execution._async_map_node_over_list``) and the merge of the returns
(``execution.get_output_from_returns``). So a node computes exactly what it computes inside
ComfyUI, for the same inputs.

Synchronous node functions run on the calling worker thread (on a loop of its own);
``async`` ones on the process's node loop, as the shims' runner does.
"""
from __future__ import annotations

import asyncio
import importlib
import inspect
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from pyisolate_runtime.nodes import comfy_bridge

__all__ = ["execute", "is_changed", "validate_inputs"]

_HIDDEN_V1 = {
    "PROMPT": "prompt",
    "DYNPROMPT": "dynprompt",
    "EXTRA_PNGINFO": "extra_pnginfo",
    "UNIQUE_ID": "unique_id",
    "AUTH_TOKEN_COMFY_ORG": "auth_token_comfy_org",
    "API_KEY_COMFY_ORG": "api_key_comfy_org",
}

_local = threading.local()


def _execution() -> Any:
    return importlib.import_module("execution")


def _is_v3(cls: Any) -> bool:
    from comfy_api.internal import _ComfyNodeInternal

    return isinstance(cls, type) and issubclass(cls, _ComfyNodeInternal)


def _run(coro: Any, on_node_loop: bool) -> Any:
    """Runs ComfyUI's coroutine: on the node loop for async nodes, else on this thread's own loop."""
    if on_node_loop:
        from pyisolate_runtime.nodes.nodes_exec import run_coroutine

        return run_coroutine(coro)
    try:
        asyncio.get_running_loop()
        running = True
    except RuntimeError:
        running = False
    if running:  # called from async code: hand it to the node loop
        from pyisolate_runtime.nodes.nodes_exec import run_coroutine

        return run_coroutine(coro)
    loop = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _local.loop = loop
    return loop.run_until_complete(coro)


def _prepare(cls: Any, obj: Any, data: Dict[str, List[Any]], hidden: Dict[str, Any]) -> Tuple[Any, Dict[str, List[Any]], Optional[dict]]:
    """What ``get_input_data`` hands on: the declared inputs, the hidden ones, ``v3_data``."""
    from comfy_execution.graph import get_input_info

    valid = cls.INPUT_TYPES()
    if _is_v3(cls):
        from comfy_api.latest import _io, io

        raw = {k: (v[0] if v else None) for k, v in data.items()}
        valid, declared, v3_data = _io.get_finalized_class_inputs(valid, raw)
        out = {k: v for k, v in data.items() if get_input_info(cls, k, valid)[1] is not None}
        values: Dict[Any, Any] = {}
        for member in io.Hidden:
            if declared is not None and member.name in declared:
                value = hidden.get(member.name)
                values[member] = {} if member.name == "prompt" and value is None else value
        v3_data = dict(v3_data or {})
        v3_data["hidden_inputs"] = values
        return cls, out, v3_data
    out = {k: v for k, v in data.items() if get_input_info(cls, k, valid)[1] is not None}
    for name, kind in (valid.get("hidden") or {}).items():
        key = _HIDDEN_V1.get(kind if isinstance(kind, str) else str(kind))
        if key is not None:
            value = hidden.get(key)
            out[name] = [{} if key == "prompt" and value is None else value]
    return obj, out, None


def _map(prompt_id: Optional[str], node_id: Optional[str], obj: Any, data: Dict[str, List[Any]], func: str,
         v3_data: Optional[dict], on_node_loop: bool, allow_interrupt: bool) -> List[Any]:
    execution = _execution()

    async def go() -> List[Any]:
        results = await execution._async_map_node_over_list(
            prompt_id, node_id, obj, data, func, allow_interrupt=allow_interrupt, v3_data=v3_data)
        return await execution.resolve_map_node_over_list_results(results)

    return _run(go(), on_node_loop)


def _async_function(cls: Any, obj: Any, func: str) -> bool:
    target = getattr(cls, "execute", None) if _is_v3(cls) else getattr(obj, func, None)
    return inspect.iscoroutinefunction(target)


def execute(class_type: str, cls: Any, obj: Any, data: Dict[str, List[Any]], hidden: Dict[str, Any],
            node_id: Optional[str]) -> Tuple[List[List[Any]], Optional[dict]]:
    """Runs the node as ComfyUI's executor does; returns (a list per output, the ``ui`` dict or None)."""
    execution = _execution()
    prompt_id = hidden.get("prompt_id")
    target, data, v3_data = _prepare(cls, obj, data, hidden)
    with comfy_bridge.executing(prompt_id, node_id, None, class_type):
        returns = _map(prompt_id, node_id, target, data, cls.FUNCTION, v3_data, _async_function(cls, obj, cls.FUNCTION), True)
    from comfy_execution.graph import ExecutionBlocker

    for r in returns:
        blocked = isinstance(r, ExecutionBlocker) or getattr(r, "block_execution", None) is not None
        if blocked or (isinstance(r, dict) and isinstance(r.get("result"), ExecutionBlocker)):
            raise NotImplementedError(f"Node {class_type} blocked execution (ExecutionBlocker), which pyisolate does not run yet.")
    output, ui, has_subgraph = execution.get_output_from_returns(returns, cls)
    if has_subgraph:
        raise NotImplementedError(f"Node {class_type} returned a graph expansion, which pyisolate does not run.")
    return output, (ui or None)


def is_changed(class_type: str, cls: Any, data: Dict[str, List[Any]], hidden: Dict[str, Any],
               node_id: Optional[str]) -> Optional[List[Any]]:
    """``IS_CHANGED`` / ``fingerprint_inputs`` per list index, as ComfyUI's cache asks it; None when absent."""
    if _is_v3(cls):
        from comfy_api.internal import first_real_override

        if first_real_override(cls, "fingerprint_inputs") is None:
            return None
        func = "fingerprint_inputs"
    elif callable(getattr(cls, "IS_CHANGED", None)):
        func = "IS_CHANGED"
    else:
        return None
    target, data, v3_data = _prepare(cls, cls, data, hidden)
    data = _only_declared(getattr(cls, func), data)
    with comfy_bridge.executing(hidden.get("prompt_id"), node_id, None, class_type):
        return _map(hidden.get("prompt_id"), node_id, target, data, func, v3_data, inspect.iscoroutinefunction(getattr(cls, func)), False)


def validate_inputs(class_type: str, cls: Any, data: Dict[str, List[Any]], node_id: Optional[str],
                    input_types: Optional[dict]) -> Any:
    """``VALIDATE_INPUTS`` / ``validate_inputs``: True, or the reason ComfyUI would report."""
    if _is_v3(cls):
        from comfy_api.internal import first_real_override

        if first_real_override(cls, "validate_inputs") is None:
            return True
        func = "validate_inputs"
    elif callable(getattr(cls, "VALIDATE_INPUTS", None)):
        func = "VALIDATE_INPUTS"
    else:
        return True
    fn = getattr(cls, func)
    target, data, v3_data = _prepare(cls, cls, data, {})
    filtered = _only_declared(fn, data)
    params = inspect.signature(fn).parameters
    if "input_types" in params:
        filtered["input_types"] = [input_types or {}]
    with comfy_bridge.executing(None, node_id, None, class_type):
        results = _map(None, node_id, target, filtered, func, v3_data, inspect.iscoroutinefunction(fn), False)
    for r in results:
        if r is not True:
            return str(r) if r is not False else f"{class_type}.{func} returned False"
    return True


def _only_declared(fn: Callable[..., Any], data: Dict[str, List[Any]]) -> Dict[str, List[Any]]:
    """The inputs ``fn`` takes by name (all of them when it takes ``**kwargs``), as ComfyUI filters them."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return dict(data)
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return dict(data)
    return {k: v for k, v in data.items() if k in params}
