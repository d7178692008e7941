"""What a pack's failed import says: the exception, the pack's file and line, and a hint.

:func:`describe` turns the exception into the pack's ``error`` map in the ``ready`` info —
``type``, ``message``, ``traceback`` (without the import machinery's frames), plus ``file``
and ``line`` (for a ``SyntaxError`` where the parser stopped, else the innermost frame in
the pack's own files) and ``hint``, a sentence saying what to do when the cause is a known
one: syntax of a newer Python, a torch-family package the host environment lacks, a module
nobody installed.
"""
from __future__ import annotations

import os
import sys
import traceback
from typing import Any, Dict, List, Optional

from ..rpc import type_name

__all__ = ["describe"]

_TORCH_FAMILY = {"torch", "torchvision", "torchaudio", "triton"}
_IMPORT_TO_DIST = {"PIL": "pillow", "cv2": "opencv-python", "yaml": "pyyaml", "sklearn": "scikit-learn",
                   "skimage": "scikit-image", "bs4": "beautifulsoup4"}


def _inside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([os.path.abspath(path), root]) == root
    except ValueError:
        return False


def _where(e: BaseException, frames: List[traceback.FrameSummary], pack_path: str) -> "tuple[Optional[str], Optional[int]]":
    if isinstance(e, SyntaxError) and e.filename:
        return os.path.abspath(e.filename), e.lineno
    root = os.path.abspath(pack_path if os.path.isdir(pack_path) else os.path.dirname(pack_path))
    own = [f for f in frames if _inside(f.filename, root)]
    pick = own[-1] if own else (frames[-1] if frames else None)
    if pick is None:
        return None, None
    return os.path.abspath(pick.filename), pick.lineno


_COMFY_TOPS = {"comfy", "comfy_api", "comfy_extras", "comfy_api_nodes", "comfy_execution", "comfy_config", "app"}


def _core_checkout() -> Optional[Dict[str, Any]]:
    from . import comfy_bridge

    return comfy_bridge.core_mode()


def _hint(e: BaseException) -> Optional[str]:
    version = ".".join(str(v) for v in sys.version_info[:3])
    if isinstance(e, SyntaxError) and "f-string" in str(e.msg or "") and sys.version_info < (3, 12):
        return (f"Quotes, backslashes and comments inside f-string expressions need Python 3.12 or newer; this process "
                f"runs Python {version}. Use a 3.12+ host Python (--python or PYISOLATE_PYTHON) for this pack.")
    if isinstance(e, ModuleNotFoundError) and e.name:
        top = e.name.split(".", 1)[0]
        if "part of ComfyUI itself" in str(e):
            return None  # the message already says to pass --comfyui DIR
        core = _core_checkout()
        if core is not None and top in _COMFY_TOPS:
            return (f"The ComfyUI checkout {core.get('dir')} (version {core.get('version') or 'unknown'}) has no module "
                    f"{e.name!r}: the pack was written for another ComfyUI version; use a checkout of the version it "
                    "targets, or a release of the pack made for this one.")
        if top in _TORCH_FAMILY:
            return (f"{top} is a torch-family package: share_torch never installs those into a pack, so it must come from "
                    f"the host environment, which has none. Install the {top} build that matches the host's torch there.")
        dist = _IMPORT_TO_DIST.get(top, top.replace("_", "-"))
        return (f"Nothing here provides {top!r}: add {dist} to the pack's dependencies (pyisolate.yaml), or install it "
                "into the host environment.")
    return None


def describe(e: BaseException, pack_path: str, skip_files: List[str]) -> Dict[str, Any]:
    """The ``error`` map of a pack whose import raised ``e`` (frames of ``skip_files`` left out)."""
    te = traceback.TracebackException.from_exception(e)
    skip = {os.path.abspath(f) for f in skip_files}
    frames = [f for f in te.stack if not f.filename.startswith("<frozen importlib") and os.path.abspath(f.filename) not in skip]
    te.stack = traceback.StackSummary.from_list(frames)
    file, line = _where(e, frames, pack_path)
    # A SyntaxError's str() repeats the file and line, which the entry carries on their own.
    message = str(e.msg) if isinstance(e, SyntaxError) and e.msg else str(e)
    out: Dict[str, Any] = {"type": type_name(type(e)), "message": message, "traceback": "".join(te.format()),
                           "file": file, "line": line}
    hint = _hint(e)
    if hint:
        out["hint"] = hint
    return out
