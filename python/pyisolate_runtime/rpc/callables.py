"""Functions of the other side (CBOR tag 41503).

A function passed to the host crosses as ``{id}`` under tag 41503 and is kept by the
endpoint until the host releases it; one the host passes here decodes to a
:class:`RemoteCallable`, whose garbage collection tells the host to release it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .endpoint import Endpoint

__all__ = ["RemoteCallable", "TAG_CALLABLE"]

TAG_CALLABLE = 41503
"""CBOR tag of a callback (content: ``{id}``)."""


class RemoteCallable:
    """A function of the other side (tag 41503). Calling it:

    * in a thread with a running asyncio loop (the node loop, or a loop of your own):
      sends the call at once and returns an ``asyncio.Future`` to await;
    * in any other thread (node code in the worker pool): waits and returns the value;
    * on the I/O thread: raises ``RuntimeError``.
    """

    __slots__ = ("_ep", "_id", "__weakref__")

    def __init__(self, ep: "Endpoint", cid: str) -> None:
        self._ep = ep
        self._id = cid

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._ep.call_auto("$cb", self._id, args, kwargs)

    def __repr__(self) -> str:
        return f"<remote callable {self._id}>"

    def __del__(self) -> None:
        ep = self._ep
        if not ep.closed:
            ep._releases.append(self._id)
