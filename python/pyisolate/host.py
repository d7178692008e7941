"""The host API for node code; the same functions as :mod:`pyisolate_runtime.host`."""

from pyisolate_runtime.host import (
    ServiceProxy,
    acall,
    call,
    cancelled,
    config,
    emit,
    inline,
    is_connected,
    is_shared_process,
    on_event,
    pack_name,
    run_async,
    serve,
    service,
)

__all__ = [
    "ServiceProxy",
    "acall",
    "call",
    "cancelled",
    "config",
    "emit",
    "inline",
    "is_connected",
    "is_shared_process",
    "on_event",
    "pack_name",
    "run_async",
    "serve",
    "service",
]
