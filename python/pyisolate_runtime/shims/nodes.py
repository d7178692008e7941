"""ComfyUI's ``nodes`` module as far as node packs use it from an isolated process.

``MAX_RESOLUTION``, the mappings of the nodes loaded in this process, and the interrupt
helpers. ComfyUI's own built-in nodes are not here (they run in ComfyUI itself).
"""
from __future__ import annotations

from typing import Any, Dict

MAX_RESOLUTION = 16384

NODE_CLASS_MAPPINGS: Dict[str, Any] = {}
"""Every node class loaded in this process, by class name."""

NODE_DISPLAY_NAME_MAPPINGS: Dict[str, str] = {}

EXTENSION_WEB_DIRS: Dict[str, str] = {}
"""Each loaded pack's web directory, by module name."""


def interrupt_processing(value: bool = True) -> None:
    from comfy import model_management

    model_management.interrupt_current_processing(value)


def before_node_execution() -> None:
    from comfy import model_management

    model_management.throw_exception_if_processing_interrupted()
