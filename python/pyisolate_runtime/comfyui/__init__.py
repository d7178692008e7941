"""How a process provides ComfyUI to its packs: pyisolate's shims, or a real checkout.

Without a checkout (the default), ``pyisolate_runtime/shims/`` is on ``sys.path`` and a
module only a real ComfyUI has (``comfy.sd``, ``comfy_extras``, …) is an import error that
names it and says to pass ``--comfyui DIR`` (:mod:`.imports`).

In **core mode** (``config.options.comfyui = {dir, args, version}``) the checkout is on
``sys.path`` instead: every process imports ComfyUI's real ``comfy.*``, ``comfy_extras``,
``comfy_api``, ``comfy_execution``, ``nodes``, … and what must stay one per host is connected
to the host (:mod:`.connect`): ``folder_paths`` and ``server`` are the host-connected modules
of the shims, ``comfy.model_management``'s interrupt and memory release and the progress
hooks go through the host, and ``comfy.cli_args`` parses the host's ComfyUI arguments. The
shared process also loads ComfyUI's built-in nodes as its start-up does (:mod:`.builtin`),
and nodes run through ComfyUI's own execution functions (:mod:`.execute`).
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional

__all__ = ["core_options", "sys_path_entry"]

SHIMS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "shims")


def core_options(cfg: Any) -> Optional[Dict[str, Any]]:
    """The config's ``options.comfyui`` map (core mode), or None (shims)."""
    if not isinstance(cfg, dict):
        return None
    opts = (cfg.get("options") or {}).get("comfyui")
    if opts is None:
        return None
    if not isinstance(opts, dict) or not isinstance(opts.get("dir"), str) or not opts["dir"]:
        raise ValueError(f"config.options.comfyui must be a map with the checkout's dir, got {opts!r}")
    args = opts.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ValueError(f"config.options.comfyui.args must be a list of strings, got {args!r}")
    return opts


def sys_path_entry(cfg: Any) -> str:
    """What provides ComfyUI on ``sys.path``: the checkout in core mode, else the shims."""
    opts = core_options(cfg)
    return os.path.abspath(opts["dir"]) if opts else SHIMS_DIR
