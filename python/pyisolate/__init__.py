"""pyisolate for node pack authors.

``from pyisolate import ProxiedSingleton`` makes a class one shared instance for every
process: it lives in the shared Python process, and isolated processes get a proxy that
calls it there. ``pyisolate.host`` is the host API (``call``, ``acall``, ``emit``,
``serve``, ``service``, ``on_event``, …), the same as ``pyisolate_runtime.host``.
"""

from pyisolate_runtime import __version__
from pyisolate_runtime.rpc import NotCallable, RemoteError

from . import host
from .singleton import ProxiedSingleton

__all__ = ["NotCallable", "ProxiedSingleton", "RemoteError", "__version__", "host"]
