"""Functions of the other side (CBOR tag 41503).

A function passed to the host crosses as ``{id, async}`` under tag 41503 (``async``: whether
it is a coroutine function) and is kept by the endpoint until the host releases it; one the
host passes here decodes to a :class:`RemoteCallable`, whose garbage collection tells the host
to release it.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from .endpoint import Endpoint

__all__ = ["RemoteCallable", "TAG_CALLABLE", "is_async_callable"]

TAG_CALLABLE = 41503
"""CBOR tag of a callback (content: ``{id}``)."""


def is_async_callable(fn: Any) -> Optional[bool]:
    """What a callable's tag says of it: ``True`` for a coroutine function (or an object whose
    ``__call__`` is one), ``False`` for a plain one, ``None`` when it is a function of another
    process that did not say."""
    if isinstance(fn, RemoteCallable):
        return fn._async
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(type(fn), "__call__", None)
    return bool(call is not None and not inspect.isfunction(fn) and not inspect.ismethod(fn)
                and inspect.iscoroutinefunction(call))


class RemoteCallable:
    """A function of the other side (tag 41503). Calling it:

    * a plain function (its tag says ``async: false``: every Python function passed here):
      waits and returns the value, in any thread but the I/O thread — also inside a running
      event loop, as calling it in its own process would (ComfyUI's sampler calls a model
      wrapper of another process from its node loop);
    * a coroutine function, or one whose kind was not said (the host's own): in a thread with a
      running asyncio loop, sends the call at once and returns an ``asyncio.Future`` to await;
      in any other thread, waits and returns the value;
    * on the I/O thread: raises ``RuntimeError``.
    """

    __slots__ = ("_ep", "_id", "_async", "__weakref__")

    def __init__(self, ep: "Endpoint", cid: str, is_async: Optional[bool] = None) -> None:
        self._ep = ep
        self._id = cid
        self._async = is_async

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._async is False:
            return self._ep.call("$cb", self._id, args, kwargs)
        return self._ep.call_auto("$cb", self._id, args, kwargs)

    def __repr__(self) -> str:
        return f"<remote callable {self._id}>"

    def __del__(self) -> None:
        ep = self._ep
        if not ep.closed:
            ep._releases.append(self._id)
