"""Core mode: import ComfyUI from the checkout and connect what is one per host to the host.

:func:`setup` runs in every process before the node extension and the packs load:

1. checks the checkout (a missing file is an error naming it);
2. puts ``folder_paths`` and ``server`` on the shims' host-connected modules;
3. lets ``comfy.cli_args`` parse the host's ComfyUI arguments (``--cpu``, ``--lowvram``, …),
   as ``main.py`` does, without touching this process's own ``sys.argv``;
4. imports ``comfy.model_management`` and routes its interrupt and memory release through
   the host: a node's ``interrupt_current_processing()`` reaches every process, the host's
   interrupt sets this process's flag, ``unload_all_models()`` here reaches the other
   processes, and the host's memory events (``soft_empty_cache``, ``unload_all_models``) run
   here (``soft_empty_cache`` stays local when ComfyUI calls it: it does so after every load);
5. imports ComfyUI's ``nodes``, as ``main.py`` does before it loads custom nodes;
6. installs the progress hooks (``comfy.utils``' global ProgressBar hook, a handler on
   ``comfy_execution.progress``'s registry) that report to the host's ``Progress`` service,
   and makes ``comfy_execution.utils``' executing context follow the node being run.
"""
from __future__ import annotations

import importlib
import os
import sys
from typing import Any, Dict, List, Optional

from pyisolate_runtime.nodes import comfy_bridge

from . import imports

__all__ = ["REQUIRED_FILES", "CheckoutError", "check_checkout", "setup"]

REQUIRED_FILES = (
    "nodes.py", "execution.py", "folder_paths.py", "node_helpers.py", "latent_preview.py", "protocol.py",
    "comfy/options.py", "comfy/cli_args.py", "comfy/model_management.py", "comfy/utils.py",
    "comfy_api/internal/__init__.py", "comfy_api/latest/__init__.py", "comfy_api/latest/_io.py",
    "comfy_execution/progress.py", "comfy_execution/utils.py", "comfy_extras/nodes_latent.py",
)
"""What core mode imports from a checkout (the host checks the same list first)."""


class CheckoutError(ImportError):
    """The ComfyUI checkout cannot be used: a file is missing, or ComfyUI refused its arguments."""


def check_checkout(directory: str) -> None:
    """Raises :class:`CheckoutError` naming the first file core mode needs that is missing."""
    for rel in REQUIRED_FILES:
        path = os.path.join(directory, rel)
        if not os.path.exists(path):
            raise CheckoutError(
                f"{path} is missing: {directory} is not a ComfyUI checkout core mode can use "
                "(pyisolate is tested with ComfyUI 0.8.0); update it or point --comfyui at another one.")


def _parse_args(directory: str, args: List[str]) -> Any:
    """Imports ``comfy.cli_args`` with ``args`` as ComfyUI's command line."""
    import comfy.options

    comfy.options.enable_args_parsing()
    saved = sys.argv
    sys.argv = [os.path.join(directory, "main.py"), *args]
    try:
        cli_args = importlib.import_module("comfy.cli_args")
    except SystemExit as e:  # argparse refused the arguments (it printed why on stderr)
        sys.modules.pop("comfy.cli_args", None)
        raise CheckoutError(
            f"ComfyUI refused the arguments {' '.join(args)!r} (exit {e.code}); pass only ComfyUI's own options "
            "(see python main.py --help in the checkout) with --comfyui-args.") from None
    finally:
        sys.argv = saved
    return cli_args.args


_NO_DEVICE_HINT = (
    "ComfyUI found no usable accelerator: on a machine without one, pass --comfyui-args=--cpu "
    "(or PYISOLATE_COMFYUI_ARGS=--cpu), as ComfyUI itself needs --cpu there.")


def _import_model_management(args: List[str]) -> Any:
    try:
        return importlib.import_module("comfy.model_management")
    except RuntimeError as e:
        if "--cpu" not in args and ("NVIDIA" in str(e) or "CUDA" in str(e) or "driver" in str(e)):
            raise CheckoutError(f"{e} — {_NO_DEVICE_HINT}") from e
        raise


def _connect_model_management(mm: Any) -> None:
    interrupt_local = mm.interrupt_current_processing
    soft_empty_local = mm.soft_empty_cache
    unload_local = mm.unload_all_models

    def fan_out(method: str, *args: Any) -> None:
        try:
            comfy_bridge.emit("ModelManagement", method, *args, comfy_bridge.process_name())
        except comfy_bridge.HostUnavailable:
            pass

    def interrupt_current_processing(value: bool = True) -> None:
        interrupt_local(value)
        fan_out("interrupt_current_processing", bool(value))

    def unload_all_models() -> None:
        unload_local()
        fan_out("unload_all_models")

    def from_host_memory(kind: str, force: bool = False) -> None:
        if kind == "unload_all_models":
            unload_local()
        else:
            soft_empty_local(force)

    mm.interrupt_current_processing = interrupt_current_processing
    mm.unload_all_models = unload_all_models
    comfy_bridge.set_host_hooks(interrupt=lambda value: interrupt_local(bool(value)), memory=from_host_memory)


def _connect_progress(mm: Any) -> None:
    import comfy.utils
    from comfy_execution import progress
    from comfy_execution.utils import CurrentNodeContext

    def hook(value: float, total: float, preview: Any, prompt_id: Optional[str] = None, node_id: Optional[str] = None) -> None:
        mm.throw_exception_if_processing_interrupted()
        comfy_bridge.send_progress(value, total, node_id=node_id, prompt_id=prompt_id)

    comfy.utils.set_progress_bar_global_hook(hook)

    class HostProgressHandler(progress.ProgressHandler):
        """``ComfyAPI.execution.set_progress`` and registry updates → the host's Progress service."""

        def __init__(self) -> None:
            super().__init__("pyisolate")

        def update_handler(self, node_id: str, value: float, max_value: float, state: Any, prompt_id: str,
                           image: Any = None) -> None:
            comfy_bridge.send_progress(value, max_value, node_id=node_id, prompt_id=prompt_id or None)

    progress.add_progress_handler(HostProgressHandler())
    comfy_bridge.set_context_factory(
        lambda prompt_id, node_id, list_index: CurrentNodeContext(prompt_id or "", node_id or "", list_index))


_state: Dict[str, Any] = {}


def setup(options: Dict[str, Any]) -> None:
    """Core mode for this process (``options`` is ``config.options.comfyui``)."""
    directory = os.path.abspath(options["dir"])
    args = [str(a) for a in options.get("args") or []]
    check_checkout(directory)
    imports.install_host_modules()
    _state.update(dir=directory, args=args, version=options.get("version"))
    _state["cli_args"] = _parse_args(directory, args)
    mm = _import_model_management(args)
    _connect_model_management(mm)
    _connect_progress(mm)
    # ComfyUI's start-up imports nodes before any custom node: packs rely on that order (importing,
    # say, comfy_extras.nodes_latent first is a circular import inside ComfyUI).
    importlib.import_module("nodes")
    comfy_bridge.set_core_mode(dict(_state))


def state() -> Dict[str, Any]:
    """What :func:`setup` established: ``dir``, ``args``, ``version``, ``cli_args`` (empty outside core mode)."""
    return _state
