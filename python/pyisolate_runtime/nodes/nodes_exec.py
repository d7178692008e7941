"""Runs one node the way ComfyUI's executor does, for V1 and V3 classes alike.

Input representation (ComfyUI's own, inside its executor): ``inputs`` maps each input
name to a **list** of values — a widget value is a one-item list, a linked input is the
upstream output's list. Unless the node sets ``INPUT_IS_LIST``, the node function is
called once per index up to the longest list, shorter lists repeating their last item.
The results are merged per output: an ``OUTPUT_IS_LIST`` output concatenates the lists
the calls returned, any other output collects one value per call. So every output comes
back as a list too, ready to feed the next node.

``hidden`` holds the values for hidden inputs, keyed by name (``unique_id``, ``prompt``,
``extra_pnginfo``, ``dynprompt``, ``auth_token_comfy_org``, ``api_key_comfy_org``; also
``prompt_id``) or by ComfyUI's constants (``"UNIQUE_ID"``, …). V1 nodes receive the ones
they declare as keyword arguments; V3 nodes read them as ``cls.hidden.<name>``.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
import weakref
from typing import Any, Callable, Dict, List, Optional, Tuple

from pyisolate_runtime.nodes import comfy_bridge
from pyisolate_runtime.nodes.nodes_info import is_v3

_HIDDEN_KINDS = {
    "UNIQUE_ID": "unique_id",
    "PROMPT": "prompt",
    "EXTRA_PNGINFO": "extra_pnginfo",
    "DYNPROMPT": "dynprompt",
    "AUTH_TOKEN_COMFY_ORG": "auth_token_comfy_org",
    "API_KEY_COMFY_ORG": "api_key_comfy_org",
}


def normalize_hidden(hidden: Optional[dict], node_id: Optional[str]) -> Dict[str, Any]:
    """Hidden values keyed by lower-case name; ``unique_id`` defaults to ``node_id``."""
    out: Dict[str, Any] = {}
    for key, value in (hidden or {}).items():
        out[_HIDDEN_KINDS.get(key, key)] = value
    if out.get("unique_id") is None and node_id is not None:
        out["unique_id"] = node_id
    return out


_node_loop: Optional[asyncio.AbstractEventLoop] = None


def set_node_loop(loop: Optional[asyncio.AbstractEventLoop]) -> None:
    """The process's node loop: async node code runs there, so that loop-bound state persists."""
    global _node_loop
    _node_loop = loop


def run_coroutine(coro: Any) -> Any:
    """Runs a coroutine to completion from synchronous code and returns its result.

    On the process's node loop when there is one (from a worker thread while it runs, or
    directly while it does not run yet, as during pack loading), else on a fresh loop. The
    node being executed stays visible to the coroutine (progress reports name it).
    """
    node = comfy_bridge.current()

    async def with_context() -> Any:
        if node is None:
            return await coro
        with comfy_bridge.executing(node.prompt_id, node.node_id, node.list_index, node.class_type):
            return await coro

    try:
        asyncio.get_running_loop()
        in_loop = True
    except RuntimeError:
        in_loop = False
    loop = _node_loop
    if in_loop:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, with_context()).result()
    if loop is not None and not loop.is_closed():
        # Only the main thread, which owns the node loop, may run it; any other thread hands
        # the coroutine over (it waits until the loop runs, as it does right after start-up).
        if loop.is_running() or threading.current_thread() is not threading.main_thread():
            return asyncio.run_coroutine_threadsafe(with_context(), loop).result()
        return loop.run_until_complete(with_context())
    return asyncio.run(with_context())


def _call(fn: Callable[..., Any], kwargs: Dict[str, Any]) -> Any:
    result = fn(**kwargs)
    if inspect.isawaitable(result):
        result = run_coroutine(result)
    return result


_ACCEPTS: "weakref.WeakKeyDictionary[Any, Dict[bool, Tuple[set, bool]]]" = weakref.WeakKeyDictionary()


def _accepts(fn: Callable[..., Any]) -> Tuple[set, bool]:
    """The keyword names ``fn`` takes, and whether it takes ``**kwargs`` (read once per
    function: ``inspect.signature`` costs more than a small node's whole run)."""
    func = getattr(fn, "__func__", fn)
    bound = func is not fn
    try:
        known = _ACCEPTS.get(func)
    except TypeError:  # not weak-referenceable: read it each time
        known = None
        func = None
    if known is not None and bound in known:
        return known[bound]
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        found: Tuple[set, bool] = (set(), True)
    else:
        names = {p.name for p in sig.parameters.values() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        var_kw = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
        found = (names, var_kw)
    if func is not None:
        try:
            _ACCEPTS.setdefault(func, {})[bound] = found
        except TypeError:
            pass
    return found


def _filter_inputs(fn: Callable[..., Any], data: Dict[str, List[Any]]) -> Dict[str, List[Any]]:
    names, var_kw = _accepts(fn)
    return dict(data) if var_kw else {k: v for k, v in data.items() if k in names}


def _check_lists(class_type: str, inputs: Dict[str, Any]) -> Dict[str, List[Any]]:
    data: Dict[str, List[Any]] = {}
    for name, values in (inputs or {}).items():
        if not isinstance(values, list):
            raise TypeError(
                f"Input {name!r} of node {class_type} must be a list of values (a widget value is a one-item list), "
                f"got {type(values).__name__}.")
        data[name] = values
    return data


def map_over_lists(input_is_list: bool, data: Dict[str, List[Any]], call: Callable[[Dict[str, Any], Optional[int]], Any],
                   allow_interrupt: bool = False) -> List[Any]:
    """Calls ``call(kwargs, index)`` once (lists whole) or once per index, as ComfyUI does."""
    from comfy import model_management

    def one(kwargs: Dict[str, Any], index: Optional[int]) -> Any:
        if allow_interrupt:
            model_management.throw_exception_if_processing_interrupted()
        return call(kwargs, index)

    if input_is_list:
        return [one(dict(data), 0)]
    longest = max((len(v) for v in data.values()), default=0)
    if longest == 0:
        return [one({}, None)]
    return [one({k: v[i if len(v) > i else -1] for k, v in data.items() if len(v) > 0}, i) for i in range(longest)]


def _ui_dict(ui: Any) -> Optional[dict]:
    if ui is None:
        return None
    return ui if isinstance(ui, dict) else ui.as_dict()


def merge_returns(cls: Any, returns: List[Any]) -> Tuple[List[List[Any]], Optional[dict]]:
    """ComfyUI's merge of per-call returns into per-output lists and one ``ui`` dict."""
    from comfy_api.latest._io import NodeOutput

    results: List[Any] = []
    uis: List[dict] = []
    for r in returns:
        if isinstance(r, NodeOutput):
            ui = _ui_dict(r.ui)
            if ui is not None:
                uis.append(ui)
            if r.expand is not None or r.block_execution is not None:
                raise NotImplementedError(
                    f"Node {cls.__name__} returned a graph expansion or an execution block, which pyisolate does not run.")
            if r.result is not None:
                results.append(r.result)
        elif isinstance(r, dict):
            if "ui" in r and r["ui"] is not None:
                uis.append(_ui_dict(r["ui"]))
            if "expand" in r:
                raise NotImplementedError(f"Node {cls.__name__} returned a graph expansion, which pyisolate does not run.")
            if "result" in r:
                results.append(r["result"])
        else:
            results.append(r)
    output: List[List[Any]] = []
    if results:
        first = results[0]
        output_is_list = list(getattr(cls, "OUTPUT_IS_LIST", None) or [False] * len(first))
        output_is_list += [False] * (len(first) - len(output_is_list))
        for i in range(len(first)):
            if output_is_list[i]:
                output.append([x for o in results for x in o[i]])
            else:
                output.append([o[i] for o in results])
    ui: Optional[dict] = None
    if uis:
        ui = {k: [y for x in uis for y in x[k]] for k in uis[0].keys()}
    return output, ui


def _nest_dynamic(cls: Any, kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """Groups the values of V3 dynamic inputs (``"mode.width"``) into dicts under their input id."""
    from comfy_api.latest._io import Autogrow, DynamicCombo, DynamicSlot

    schema = cls.SCHEMA
    dynamic = [i for i in (schema.inputs if schema else []) if isinstance(i, (Autogrow.Input, DynamicCombo.Input, DynamicSlot.Input))]
    if not dynamic:
        return kwargs
    out = dict(kwargs)
    for inp in dynamic:
        prefix = inp.id + "."
        group = {k[len(prefix):]: out.pop(k) for k in list(out) if k.startswith(prefix)}
        if not isinstance(inp, Autogrow.Input) and inp.id in out:
            group[inp.id] = out.pop(inp.id)
        if group or not inp.optional:
            out[inp.id] = group
    return out


def _check_outputs(cls: Any, class_type: str, output: List[List[Any]]) -> None:
    try:
        from pyisolate_runtime.io_types_gen import check_crossing
    except ImportError:
        return
    types = list(getattr(cls, "RETURN_TYPES", ()) or ())
    names = list(getattr(cls, "RETURN_NAMES", None) or types)
    for i, values in enumerate(output):
        io_type = types[i] if i < len(types) else "*"
        if not isinstance(io_type, str):
            continue
        slot = str(names[i]) if i < len(names) else str(i)
        for v in values:
            try:
                check_crossing(io_type, v, node=class_type, slot=slot)
            except RecursionError:
                pass  # nested too deeply to walk: encoding it says so, naming the output


class NodeRunner:
    """Executes node classes; keeps V1 node objects per node id, as ComfyUI's object cache does."""

    def __init__(self) -> None:
        self._objects: Dict[Tuple[str, str], Any] = {}

    def forget(self, node_id: Optional[str] = None) -> None:
        """Drops the kept V1 objects of one node id (of every node when None)."""
        if node_id is None:
            self._objects.clear()
        else:
            for key in [k for k in self._objects if k[0] == node_id]:
                del self._objects[key]

    def _object(self, class_type: str, cls: Any, node_id: Optional[str]) -> Any:
        """The V1 node object of ``node_id`` (made on first use and kept, as ComfyUI does)."""
        key = (str(node_id), class_type)
        obj = self._objects.get(key)
        if obj is None:
            obj = cls()
            if node_id is not None:
                self._objects[key] = obj
        return obj

    def _v1_hidden_kwargs(self, declared_types: Dict[str, Any], hidden: Dict[str, Any]) -> Dict[str, List[Any]]:
        declared = declared_types.get("hidden") or {}
        out: Dict[str, List[Any]] = {}
        for name, kind in declared.items():
            kind = kind[0] if isinstance(kind, (list, tuple)) else kind
            key = _HIDDEN_KINDS.get(str(kind))
            if key is None:
                continue
            value = hidden.get(key)
            if key == "prompt" and value is None:
                value = {}
            out[name] = [value]
        return out

    def _declared_only(self, cls: Any, fn: Callable[..., Any], data: Dict[str, List[Any]],
                       declared: Optional[Dict[str, Any]] = None) -> Dict[str, List[Any]]:
        _names, var_kw = _accepts(fn)
        if var_kw:
            return data
        if declared is None:
            declared = cls.INPUT_TYPES() or {}
        known = set((declared.get("required") or {}).keys()) | set((declared.get("optional") or {}).keys())
        known |= set((declared.get("hidden") or {}).keys())
        return {k: v for k, v in data.items() if k in known or k.split(".", 1)[0] in known}

    def execute(self, class_type: str, cls: Any, inputs: Dict[str, Any], hidden: Optional[dict] = None,
                node_id: Optional[str] = None) -> Dict[str, Any]:
        """Runs the node; returns ``{"result": [list per output], "ui": dict | None}``."""
        data = _check_lists(class_type, inputs)
        hidden_values = normalize_hidden(hidden, node_id)
        prompt_id = hidden_values.get("prompt_id")
        if comfy_bridge.core_mode() is not None:  # ComfyUI's own execution functions
            from pyisolate_runtime.comfyui import execute as core

            obj = None if is_v3(cls) else self._object(class_type, cls, node_id)
            output, ui = core.execute(class_type, cls, obj, data, hidden_values, node_id)
            _check_outputs(cls, class_type, output)
            return {"result": output, "ui": ui}
        if is_v3(cls):
            cls.VALIDATE_CLASS()
            clone = cls.PREPARE_CLASS_CLONE(hidden_values)
            fn = getattr(clone, clone.FUNCTION)
            input_is_list = bool(clone.SCHEMA.is_input_list)
            accept_all = bool(clone.SCHEMA.accept_all_inputs)
            if not accept_all:
                data = self._declared_only(clone, clone.execute, data)

            def call(kwargs: Dict[str, Any], index: Optional[int]) -> Any:
                with comfy_bridge.executing(prompt_id, node_id, index, class_type):
                    return _call(fn, _nest_dynamic(clone, kwargs))
        else:
            obj = self._object(class_type, cls, node_id)
            function = getattr(cls, "FUNCTION", None)
            if not function or not hasattr(obj, function):
                raise AttributeError(f"Node {class_type} names FUNCTION = {function!r}, which the class does not define.")
            fn = getattr(obj, function)
            declared = cls.INPUT_TYPES() or {}  # once per run, as ComfyUI reads it
            data.update(self._v1_hidden_kwargs(declared, hidden_values))
            data = self._declared_only(cls, fn, data, declared)
            input_is_list = bool(getattr(cls, "INPUT_IS_LIST", False))

            def call(kwargs: Dict[str, Any], index: Optional[int]) -> Any:
                with comfy_bridge.executing(prompt_id, node_id, index, class_type):
                    return _call(fn, kwargs)

        returns = map_over_lists(input_is_list, data, call, allow_interrupt=True)
        output, ui = merge_returns(cls, returns)
        _check_outputs(cls, class_type, output)
        return {"result": output, "ui": ui}

    def is_changed(self, class_type: str, cls: Any, inputs: Dict[str, Any], hidden: Optional[dict] = None,
                   node_id: Optional[str] = None) -> Optional[List[Any]]:
        """``IS_CHANGED`` / ``fingerprint_inputs`` per list index; None when the class defines neither."""
        data = _check_lists(class_type, inputs)
        hidden_values = normalize_hidden(hidden, node_id)
        if comfy_bridge.core_mode() is not None:
            from pyisolate_runtime.comfyui import execute as core

            return core.is_changed(class_type, cls, data, hidden_values, node_id)
        from pyisolate_runtime.nodes.nodes_info import node_flags

        if not node_flags(cls)["is_changed"]:
            return None
        if is_v3(cls):
            clone = cls.PREPARE_CLASS_CLONE(hidden_values)
            fn = clone.fingerprint_inputs
            input_is_list = bool(clone.SCHEMA.is_input_list)
        else:
            fn = cls.IS_CHANGED
            data.update(self._v1_hidden_kwargs(cls.INPUT_TYPES() or {}, hidden_values))
            input_is_list = bool(getattr(cls, "INPUT_IS_LIST", False))
        data = _filter_inputs(fn, data)
        return map_over_lists(input_is_list, data, lambda kwargs, _i: _call(fn, kwargs))

    def validate_inputs(self, class_type: str, cls: Any, inputs: Dict[str, Any], node_id: Optional[str] = None,
                        input_types: Optional[dict] = None) -> Any:
        """``VALIDATE_INPUTS`` / ``validate_inputs``: True, or the reason the inputs are refused."""
        from pyisolate_runtime.nodes.nodes_info import node_flags

        if comfy_bridge.core_mode() is not None:
            from pyisolate_runtime.comfyui import execute as core

            return core.validate_inputs(class_type, cls, _check_lists(class_type, inputs), node_id, input_types)
        if not node_flags(cls)["validate_inputs"]:
            return True
        data = _check_lists(class_type, inputs)
        if is_v3(cls):
            clone = cls.PREPARE_CLASS_CLONE(normalize_hidden(None, node_id))
            fn = clone.validate_inputs
            input_is_list = bool(clone.SCHEMA.is_input_list)
        else:
            fn = cls.VALIDATE_INPUTS
            input_is_list = bool(getattr(cls, "INPUT_IS_LIST", False))
        names, var_kw = _accepts(fn)
        filtered = _filter_inputs(fn, data)
        if "input_types" in names or (var_kw and input_types is not None):
            filtered["input_types"] = [input_types or {}]
        for r in map_over_lists(input_is_list, filtered, lambda kwargs, _i: _call(fn, kwargs)):
            if r is not True:
                return str(r) if r is not False else f"{class_type}.VALIDATE_INPUTS returned False"
        return True
