"""Core mode: a V1 node class's ``/object_info`` entry as the checkout's own server makes it.

ComfyUI's ``server.py`` builds V1 entries in a ``node_info`` function nested in its routes;
its fields change between ComfyUI versions. :func:`checkout_node_info` compiles that one
function from the checkout's ``server.py`` (without importing the server) and runs it for a
class, so entries match what that ComfyUI serves. None when the checkout has no such
function, or it needs more than the node mappings: the runtime's own V1 entry is used then.
"""
from __future__ import annotations

import ast
import builtins
import os
import types
from typing import Any, Callable, Dict, Optional

__all__ = ["checkout_node_info"]

_cache: Dict[str, Optional[Any]] = {}


def _compiled(directory: str) -> Optional[Any]:
    if directory in _cache:
        return _cache[directory]
    code = None
    path = os.path.join(directory, "server.py")
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        fn = next((n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "node_info"), None)
        if fn is not None:
            free = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
            args = {a.arg for a in fn.args.args}
            assigned = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
            unknown = free - args - assigned - set(dir(builtins)) - {"nodes", "_ComfyNodeInternal"}
            if not unknown:
                code = compile(ast.Module(body=[fn], type_ignores=[]), path, "exec")
    except (OSError, SyntaxError):
        code = None
    _cache[directory] = code
    return code


def checkout_node_info(directory: str) -> Optional[Callable[[str, Any, Optional[str]], Dict[str, Any]]]:
    """``info(name, cls, display_name)`` made by the checkout's ``server.node_info``, or None."""
    code = _compiled(directory)
    if code is None:
        return None

    def info(name: str, cls: Any, display_name: Optional[str]) -> Dict[str, Any]:
        from comfy_api.internal import _ComfyNodeInternal

        mappings = types.SimpleNamespace(NODE_CLASS_MAPPINGS={name: cls},
                                         NODE_DISPLAY_NAME_MAPPINGS={name: display_name} if display_name is not None else {})
        scope: Dict[str, Any] = {"nodes": mappings, "_ComfyNodeInternal": _ComfyNodeInternal}
        exec(code, scope)
        return scope["node_info"](name)

    return info
