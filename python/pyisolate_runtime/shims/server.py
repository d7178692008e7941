"""ComfyUI's ``server`` module for node packs run by pyisolate: ``PromptServer.instance``.

``send_sync(event, data, sid)`` and ``await send(...)`` put ``{type, data}`` events, with
the client id, onto the host's event bus through its ``PromptServer`` service.
``client_id`` is the id of the client whose prompt runs. Registering HTTP routes from a
pack (``@PromptServer.instance.routes.get(...)``) is not possible in an isolated process:
declare them in ``route_manifest.json`` instead.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from pyisolate_runtime.nodes import comfy_bridge

_SERVICE = "PromptServer"


class BinaryEventTypes:
    PREVIEW_IMAGE = 1
    UNENCODED_PREVIEW_IMAGE = 2
    TEXT = 3
    PREVIEW_IMAGE_WITH_METADATA = 4


class RoutesUnavailable(RuntimeError):
    """Raised when a pack registers an HTTP route from an isolated process."""


def _routes_error(what: str) -> RoutesUnavailable:
    return RoutesUnavailable(
        f"PromptServer.instance.{what} cannot register HTTP routes from a pyisolate process: decorators run at "
        "import time, before isolation is ready. List the routes in the pack's route_manifest.json "
        '({"routes": [{"method": "GET", "path": "/my_node/status", "handler": "get_status"}]}) and define the '
        "handlers as async methods of the pack's extension class.")


class _Routes:
    """Stands where aiohttp's RouteTableDef would; every use says what to do instead."""

    def _refuse(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        raise _routes_error("routes")

    get = post = put = patch = delete = head = route = view = static = _refuse

    def __iter__(self) -> Any:
        return iter(())


class _App:
    def __getattr__(self, name: str) -> Any:
        raise _routes_error(f"app.{name}")


class PromptServer:
    """The process's stand-in for ComfyUI's server; use ``PromptServer.instance``."""

    instance: "PromptServer"

    def __init__(self) -> None:
        self.routes = _Routes()
        self.app = _App()
        self.supports = ["custom_nodes_from_web"]
        self.last_node_id: Optional[str] = None
        self.last_prompt_id: Optional[str] = None
        self._client_id: Optional[str] = None

    @property
    def client_id(self) -> Optional[str]:
        """The client whose prompt runs now (None when the prompt came without one)."""
        try:
            self._client_id = comfy_bridge.call(_SERVICE, "client_id")
        except (comfy_bridge.HostUnavailable, RuntimeError):
            pass  # no host, or asked from the I/O thread: the last known value
        return self._client_id

    @client_id.setter
    def client_id(self, value: Optional[str]) -> None:
        self._client_id = value

    def send_sync(self, event: Any, data: Any, sid: Optional[str] = None) -> None:
        """Sends ``{type: event, data}`` to the client ``sid`` (all clients when None)."""
        comfy_bridge.emit(_SERVICE, "send_sync", event, data, sid)

    async def send(self, event: Any, data: Any, sid: Optional[str] = None) -> None:
        self.send_sync(event, data, sid)

    async def send_json(self, event: Any, data: Any, sid: Optional[str] = None) -> None:
        self.send_sync(event, data, sid)

    def send_progress_text(self, text: str, node_id: str, sid: Optional[str] = None) -> None:
        self.send_sync("progress_text", {"text": text, "node": node_id}, sid)

    def queue_updated(self) -> None:
        pass

    def add_on_prompt_handler(self, handler: Callable[..., Any]) -> None:
        raise _routes_error("add_on_prompt_handler")


PromptServer.instance = PromptServer()
