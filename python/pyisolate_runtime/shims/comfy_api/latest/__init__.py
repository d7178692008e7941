"""ComfyUI's V3 node API: ``from comfy_api.latest import ComfyExtension, io, ui``.

A pack exposes ``async def comfy_entrypoint() -> ComfyExtension``; the extension's
``get_node_list()`` gives its ``io.ComfyNode`` classes. ``ComfyAPI().execution.set_progress``
(async) and ``ComfyAPISync().execution.set_progress`` report progress to the host.
"""
from __future__ import annotations

from typing import Any, Optional

from pyisolate_runtime.nodes import comfy_bridge

from . import _input, _input_impl, _util
from . import _io as io
from . import _ui as ui


def _set_progress(value: float, max_value: float, node_id: Optional[str], preview_image: Any) -> None:
    ctx = comfy_bridge.current()
    if node_id is None and ctx is not None:
        node_id = ctx.node_id
    if node_id is None:
        raise ValueError("set_progress needs node_id when called outside a node's execution.")
    comfy_bridge.send_progress(value, max_value, node_id=node_id)


class ComfyAPI_latest:
    """The async API object: ``await ComfyAPI().execution.set_progress(value, max_value)``."""

    VERSION = "latest"
    STABLE = False

    class Execution:
        async def set_progress(self, value: float, max_value: float, node_id: Optional[str] = None,
                               preview_image: Any = None, ignore_size_limit: bool = False) -> None:
            """Updates the progress bar of the executing node (or of ``node_id``)."""
            _set_progress(value, max_value, node_id, preview_image)

    def __init__(self) -> None:
        self.execution = self.Execution()


class ComfyAPISync:
    """The same API with plain (blocking) methods: ``ComfyAPISync().execution.set_progress(...)``."""

    VERSION = "latest"
    STABLE = False

    class Execution:
        def set_progress(self, value: float, max_value: float, node_id: Optional[str] = None,
                         preview_image: Any = None, ignore_size_limit: bool = False) -> None:
            """Updates the progress bar of the executing node (or of ``node_id``)."""
            _set_progress(value, max_value, node_id, preview_image)

    def __init__(self) -> None:
        self.execution = self.Execution()


ComfyAPI = ComfyAPI_latest


class ComfyExtension:
    """What ``comfy_entrypoint()`` returns: override ``get_node_list`` (async)."""

    async def on_load(self) -> None:
        """Called once when the pack is loaded, before ``get_node_list``."""

    async def get_node_list(self) -> list:
        """The pack's ``io.ComfyNode`` classes."""
        raise NotImplementedError


class Input:
    """The types of node input values (for annotations and ``isinstance``)."""

    Image = _input.ImageInput
    Audio = _input.AudioInput
    Mask = _input.MaskInput
    Latent = _input.LatentInput
    Video = _input.VideoInput


class InputImpl:
    """Video inputs: from a file or ``BytesIO``, or from tensors."""

    VideoFromFile = _input_impl.VideoFromFile
    VideoFromComponents = _input_impl.VideoFromComponents


class Types:
    """Value types: video codec/container/components, 3D (MESH, VOXEL), SVG."""

    VideoCodec = _util.VideoCodec
    VideoContainer = _util.VideoContainer
    VideoComponents = _util.VideoComponents
    MESH = _util.MESH
    VOXEL = _util.VOXEL
    SVG = _util.SVG


IO = io
UI = ui

__all__ = ["ComfyAPI", "ComfyAPISync", "Input", "InputImpl", "Types", "ComfyExtension", "io", "IO", "ui", "UI"]
