"""pyisolate for node pack authors.

``from pyisolate import ProxiedSingleton`` makes a class one shared instance for every
process: it lives in the shared Python process, and isolated processes get a proxy that
calls it there. ``pyisolate.host`` is the host API (``call``, ``acall``, ``emit``,
``serve``, ``service``, ``on_event``, …), the same as ``pyisolate_runtime.host``.
``ExtensionBase`` is the base of a pack's extension class, whose async methods serve the
routes of its ``route_manifest.json``.
"""

from pyisolate_runtime import __version__
from pyisolate_runtime.rpc import NotCallable, RemoteError

from . import host
from .extension import ExtensionBase
from .singleton import ProxiedSingleton

__all__ = ["ExtensionBase", "NotCallable", "ProxiedSingleton", "RemoteError", "__version__", "host"]
