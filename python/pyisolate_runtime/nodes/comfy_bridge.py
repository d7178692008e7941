"""What the ComfyUI shim modules share: the road to the host, and the node being executed.

``folder_paths``, ``comfy.model_management``, ``comfy.utils``, ``server`` and
``comfy_api`` reach the host's services (FolderPaths, ModelManagement, PromptServer,
Progress) through :func:`call` and :func:`emit`. :func:`executing` marks the node that
runs in the current thread so that progress reports name it, as ComfyUI's executing
context does.

Whichever ``comfy.model_management`` the process has — the shim's, or ComfyUI's own in
core mode — registers with :func:`set_host_hooks` what the host's interrupt and memory
events do here (:func:`host_interrupt`, :func:`host_memory_event`). In core mode
(:func:`core_mode`), :func:`executing` also enters ComfyUI's own executing context.
"""
from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, Optional


class HostUnavailable(RuntimeError):
    """Raised when a shim needs the host but this Python process was not started by pyisolate."""


@dataclass(frozen=True)
class NodeContext:
    """The node being executed in this thread."""

    prompt_id: Optional[str]
    node_id: Optional[str]
    list_index: Optional[int]
    class_type: Optional[str]


_current: contextvars.ContextVar = contextvars.ContextVar("pyisolate_node_context", default=None)
_context_factory: Optional[Callable[[Optional[str], Optional[str], Optional[int]], Any]] = None
_hooks: Dict[str, Optional[Callable[..., Any]]] = {"interrupt": None, "memory": None}
_core: Optional[Dict[str, Any]] = None


def set_host_hooks(interrupt: Callable[[bool], Any], memory: Callable[..., Any]) -> None:
    """What the host's ``ModelManagement`` events do here: set the interrupt flag, free memory."""
    _hooks["interrupt"] = interrupt
    _hooks["memory"] = memory


def host_interrupt(value: bool = True, *_: Any) -> None:
    """The host interrupted (or, with False, resumed) processing."""
    fn = _hooks["interrupt"]
    if fn is not None:
        fn(bool(value))


def host_memory_event(kind: str, force: bool = False) -> None:
    """The host asks this process to free memory (``soft_empty_cache``) or drop its models (``unload_all_models``)."""
    fn = _hooks["memory"]
    if fn is not None:
        fn(kind, force)


def set_context_factory(factory: Optional[Callable[[Optional[str], Optional[str], Optional[int]], Any]]) -> None:
    """A context manager :func:`executing` also enters (ComfyUI's own executing context, in core mode)."""
    global _context_factory
    _context_factory = factory


def set_core_mode(state: Optional[Dict[str, Any]]) -> None:
    """Marks this process as running on a real ComfyUI checkout (``{dir, args, version, cli_args}``)."""
    global _core
    _core = state


def core_mode() -> Optional[Dict[str, Any]]:
    """The checkout this process runs on (core mode), or None when the shims provide ComfyUI."""
    return _core


def current() -> Optional[NodeContext]:
    """The node executing in this thread (or task), or None outside node execution."""
    return _current.get()


@contextlib.contextmanager
def executing(prompt_id: Optional[str], node_id: Optional[str], list_index: Optional[int] = None,
              class_type: Optional[str] = None) -> Iterator[NodeContext]:
    """Marks ``node_id`` as executing for the duration of the ``with`` block."""
    ctx = NodeContext(prompt_id, node_id, list_index, class_type)
    token = _current.set(ctx)
    try:
        if _context_factory is None:
            yield ctx
        else:
            with _context_factory(prompt_id, node_id, list_index):
                yield ctx
    finally:
        _current.reset(token)


def _host() -> Any:
    try:
        from pyisolate_runtime import host
    except ImportError as e:  # pragma: no cover - the runtime ships host.py
        raise HostUnavailable("The pyisolate runtime is incomplete: pyisolate_runtime.host is missing.") from e
    connected = getattr(host, "is_connected", None)
    if callable(connected) and not connected():
        raise HostUnavailable(
            "This ComfyUI function needs the pyisolate host, but this Python process is not connected to one; "
            "run the node pack through pyisolate (pyisolate run / createHost) instead of importing it directly.")
    return host


def available() -> bool:
    """Whether the host can be reached from this process."""
    try:
        _host()
        return True
    except HostUnavailable:
        return False


def call(service: str, method: str, *args: Any, **kwargs: Any) -> Any:
    """Calls a host service and waits for its answer (from node code, i.e. a worker thread)."""
    return _host().call(service, method, *args, **kwargs)


def emit(service: str, method: str, *args: Any, **kwargs: Any) -> None:
    """Tells a host service something without waiting for an answer."""
    _host().emit(service, method, *args, **kwargs)


def process_name() -> Optional[str]:
    """This process's name as the host knows it (the pack, or the shared process's name)."""
    try:
        return _host().pack_name()
    except Exception:
        return None


def send_progress(value: float, total: float, node_id: Optional[str] = None, prompt_id: Optional[str] = None,
                  preview: Optional[tuple] = None) -> None:
    """Reports a node's progress to the host's Progress service (``{value, max, node, prompt_id}``),
    with an encoded preview image (``(format, bytes)``) when there is one.

    Progress is advisory: without a host (a pack imported outside pyisolate) nothing is sent.
    """
    ctx = current()
    if node_id is None and ctx is not None:
        node_id = ctx.node_id
    if prompt_id is None and ctx is not None:
        prompt_id = ctx.prompt_id
    try:
        report = {"value": value, "max": total, "node": node_id, "prompt_id": prompt_id}
        if preview is not None:
            report["preview"] = {"format": preview[0], "image": preview[1]}
        emit("Progress", "update", report)
    except HostUnavailable:
        pass
