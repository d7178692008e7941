"""Calls both ways over the host connection (see docs/protocol.md).

``pyisolate_runtime.rpc`` is what node code and extensions use of it: :func:`serve` and
:func:`inline` to offer methods to the host, the errors that cross (:class:`RemoteError`,
:class:`NotCallable`), and :class:`Endpoint`, the connection itself. The parts:

* :mod:`.endpoint` — the connection: the I/O thread, sending, closing;
* :mod:`.calls` — calls from here to the host, and their answers;
* :mod:`.serving` — calls from the host into this process, and where they run;
* :mod:`.registry` — the service table (:func:`serve`) and which attributes are callable;
* :mod:`.errors` — the exception map and how an exception is rebuilt on this side;
* :mod:`.callables` — functions of the other side (tag 41503);
* :mod:`.log` — the runtime's own lines on stderr.
"""

from .callables import TAG_CALLABLE, RemoteCallable
from .endpoint import Endpoint
from .errors import TAG_EXCEPTION, NotCallable, RemoteError, exception_map, restore_exception, type_name
from .registry import inline, serve, services
from .serving import current_job_cancelled

__all__ = [
    "Endpoint",
    "NotCallable",
    "RemoteCallable",
    "RemoteError",
    "TAG_CALLABLE",
    "TAG_EXCEPTION",
    "current_job_cancelled",
    "exception_map",
    "inline",
    "restore_exception",
    "serve",
    "services",
    "type_name",
]
