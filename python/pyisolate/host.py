"""The host API for node code; the same functions as :mod:`pyisolate_runtime.host`."""

from pyisolate_runtime.host import *  # noqa: F401,F403 (the same API, under this name)
from pyisolate_runtime.host import ServiceProxy
from pyisolate_runtime.host import __all__ as _runtime_all

__all__ = ["ServiceProxy", *_runtime_all]
