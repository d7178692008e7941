"""ComfyUI's ``server`` module for node packs run by pyisolate: ``PromptServer.instance``.

* ``send_sync(event, data, sid)`` and ``await send(...)`` reach the server's ``/ws``
  clients (the client ``sid``, else every client), through the host's ``PromptServer``
  service, tagged with the node that was executing and its prompt (prompts may run at the
  same time on the host: the tag says whose event it is). Binary events are encoded here as
  ComfyUI encodes them: ``UNENCODED_PREVIEW_IMAGE`` tuples become ``PREVIEW_IMAGE`` frames,
  ``PREVIEW_IMAGE_WITH_METADATA`` its combined frame, ``send_progress_text`` a ``TEXT``
  frame, and bytes go as they are.
* ``client_id`` is the id of the client whose prompt runs (the prompt of the node executing
  in this thread).
* ``routes`` (``@PromptServer.instance.routes.get("/x")``…) and ``app`` (``add_routes``,
  ``router.add_get``…) record the pack's routes at import time; the host serves them and
  runs each handler in this process (see :mod:`pyisolate_runtime.web.routes`).
"""
from __future__ import annotations

import json
import struct
from typing import Any, Callable, Optional

from pyisolate_runtime.nodes import comfy_bridge
from pyisolate_runtime.web.previews import encode_preview
from pyisolate_runtime.web.routes import App, RouteTableDef

_SERVICE = "PromptServer"


class BinaryEventTypes:
    PREVIEW_IMAGE = 1
    UNENCODED_PREVIEW_IMAGE = 2
    TEXT = 3
    PREVIEW_IMAGE_WITH_METADATA = 4


def _preview_frame(image: Any) -> bytes:
    """``PREVIEW_IMAGE``'s payload: the image type (1 JPEG, 2 PNG) and the encoded image."""
    fmt, data = encode_preview(image) or ("JPEG", b"")
    return struct.pack(">I", 2 if fmt == "PNG" else 1) + data


def _preview_with_metadata(image: Any, metadata: Optional[dict]) -> bytes:
    """``PREVIEW_IMAGE_WITH_METADATA``'s payload: metadata length, metadata JSON, image."""
    fmt, data = encode_preview(image) or ("JPEG", b"")
    meta = dict(metadata or {})
    meta["image_type"] = "image/png" if fmt == "PNG" else "image/jpeg"
    encoded = json.dumps(meta).encode("utf-8")
    return struct.pack(">I", len(encoded)) + encoded + data


class PromptServer:
    """The process's stand-in for ComfyUI's server; use ``PromptServer.instance``."""

    instance: "PromptServer"

    def __init__(self) -> None:
        self.routes = RouteTableDef(recording=True)
        self.app = App()
        self.supports = ["custom_nodes_from_web"]
        self.on_prompt_handlers: list = []
        self._client_id: Optional[str] = None

    @property
    def last_node_id(self) -> Optional[str]:
        """The node executing in this thread, if any."""
        ctx = comfy_bridge.current()
        return ctx.node_id if ctx is not None else None

    @property
    def last_prompt_id(self) -> Optional[str]:
        """The prompt of the node executing in this thread, if any."""
        ctx = comfy_bridge.current()
        return ctx.prompt_id if ctx is not None else None

    @property
    def loop(self) -> Any:
        """The process's node loop (where async node code and route handlers run)."""
        from pyisolate_runtime.nodes import nodes_exec

        return nodes_exec._node_loop

    @property
    def client_id(self) -> Optional[str]:
        """The client whose prompt runs now (None when the prompt came without one)."""
        ctx = comfy_bridge.current()
        try:
            self._client_id = comfy_bridge.call(_SERVICE, "client_id", ctx.prompt_id if ctx is not None else None)
        except (comfy_bridge.HostUnavailable, RuntimeError):
            pass  # no host, or asked from the I/O thread: the last known value
        return self._client_id

    @client_id.setter
    def client_id(self, value: Optional[str]) -> None:
        self._client_id = value

    def send_sync(self, event: Any, data: Any, sid: Optional[str] = None) -> None:
        """Sends ``{type: event, data}`` to the client ``sid`` (all clients when None)."""
        if event == BinaryEventTypes.UNENCODED_PREVIEW_IMAGE:
            event, data = BinaryEventTypes.PREVIEW_IMAGE, _preview_frame(data)
        elif event == BinaryEventTypes.PREVIEW_IMAGE_WITH_METADATA and isinstance(data, (tuple, list)):
            image, metadata = data
            data = _preview_with_metadata(image, metadata)
        elif isinstance(data, (bytes, bytearray, memoryview)):
            if not isinstance(event, int):
                raise RuntimeError(f"Binary event types must be integers, got {event}")
            data = bytes(data)
        ctx = comfy_bridge.current()
        comfy_bridge.emit(_SERVICE, "send_sync", event, data, sid, ctx.node_id if ctx is not None else None,
                          ctx.prompt_id if ctx is not None else None)

    async def send(self, event: Any, data: Any, sid: Optional[str] = None) -> None:
        self.send_sync(event, data, sid)

    async def send_json(self, event: Any, data: Any, sid: Optional[str] = None) -> None:
        self.send_sync(event, data, sid)

    async def send_bytes(self, event: int, data: bytes, sid: Optional[str] = None) -> None:
        self.send_sync(event, bytes(data), sid)

    def send_progress_text(self, text: Any, node_id: str, sid: Optional[str] = None) -> None:
        """A node's progress text, as ComfyUI's ``TEXT`` frame: node id length, node id, text."""
        if isinstance(text, str):
            text = text.encode("utf-8")
        node = str(node_id).encode("utf-8")
        self.send_sync(BinaryEventTypes.TEXT, struct.pack(">I", len(node)) + node + bytes(text), sid)

    def queue_updated(self) -> None:
        """The host's server sends queue status itself."""

    def add_on_prompt_handler(self, handler: Callable[..., Any]) -> None:
        raise RuntimeError(
            "PromptServer.instance.add_on_prompt_handler is not available in a pyisolate process: prompts reach "
            "the host's server, not this process.")


PromptServer.instance = PromptServer()
