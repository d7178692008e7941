"""The object table: Python objects of this process that other processes hold handles to.

An object that has no wire form (a ModelPatcher, a CLIP, a pack's own class) is kept here
when it leaves the process, and crosses as a handle (CBOR tag 41502)
``{id, owner, type, repr, pack?}``: ``owner`` is this process's name, ``id`` an unguessable
token that starts with this process start's epoch, ``type`` the object's qualified type
name, ``repr`` a short description for logs and errors, ``pack`` the pack whose node made
it (when known).

Lifetimes are the host's: every time the object is sent, its entry counts one more send;
the host answers with ``$obj.release([[id, n], ...])`` once nobody holds the handle, ``n``
being the sends it had received by then, and the entry goes when every send is accounted
for. A send still in flight is never undone by a release that crossed it, and the same
object sent twice keeps one id, so a handle coming back resolves to the identical object.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any

from ..rpc.errors import type_name

__all__ = ["EPOCH", "HandleError", "ObjectTable", "TAG_HANDLE", "short_repr"]

TAG_HANDLE = 41502
"""CBOR tag of a remote object handle (content: ``{id, owner, type, repr, pack?}``)."""

EPOCH = secrets.token_hex(4)
"""This process start's epoch: every id made here starts with it, so an id of an earlier
start of the same process is recognised as gone, never confused with a live one."""

_REPR_MAX = 120


class HandleError(LookupError):
    """A handle names an object this process does not hold (released, or made by an
    earlier start of the process)."""


HandleError.__module__ = "pyisolate"


def short_repr(obj: Any) -> str:
    """A one-line description of ``obj`` of at most 120 characters (never raises)."""
    cls = type(obj)
    if cls.__repr__ is object.__repr__:
        return f"<{type_name(cls)} object>"
    try:
        text = repr(obj)
    except Exception as e:  # a broken __repr__ must not stop the object from crossing
        return f"<{type_name(cls)} object (repr failed: {type(e).__name__})>"
    text = " ".join(text.split())
    return text if len(text) <= _REPR_MAX else text[: _REPR_MAX - 1] + "…"


class _Entry:
    __slots__ = ("hid", "obj", "type", "repr", "pack", "sent", "pending")

    def __init__(self, hid: str, obj: Any, tname: str, rep: str, pack: str | None) -> None:
        self.hid = hid
        self.obj = obj
        self.type = tname
        self.repr = rep
        self.pack = pack
        self.sent = 0  # sends the host has not released yet
        self.pending = 0  # sends being encoded right now (not on the wire yet)


class ObjectTable:
    """The objects of this process that crossed as handles, by id.

    :meth:`export` is the encoder's fallback for objects without a wire form; between
    :meth:`begin` and :meth:`end` (one message being encoded on this thread) its sends are
    provisional, so a message that fails to encode leaves no count behind.
    """

    def __init__(self, owner: str = "") -> None:
        self.owner = owner
        """This process's name (the pack of an isolated process, or ``shared``)."""
        self.pack_of_current_node: Any = None
        """Returns the pack of the node running on this thread, or None (set by setup)."""
        self._lock = threading.Lock()
        self._by_id: dict[str, _Entry] = {}
        self._by_obj: dict[int, _Entry] = {}
        self._tls = threading.local()

    # ------------------------------------------------------------------ sending

    def begin(self) -> Any:
        """Start the provisional sends of one message on this thread; returns the mark
        :meth:`end` wants."""
        prev = getattr(self._tls, "pending", None)
        self._tls.pending = []
        return prev

    def end(self, mark: Any, ok: bool) -> None:
        """Commit (``ok``) or undo the provisional sends since :meth:`begin`."""
        entries = getattr(self._tls, "pending", None) or []
        self._tls.pending = mark
        if not entries:
            return
        dropped = []
        with self._lock:
            for e in entries:
                e.pending -= 1
                if ok:
                    e.sent += 1
                elif e.sent <= 0 and e.pending <= 0:
                    dropped.append(self._forget(e))
        del dropped  # the objects go here, outside the lock

    def export(self, obj: Any) -> dict[str, Any]:
        """The handle map of ``obj``, kept in the table (one id per object)."""
        with self._lock:
            e = self._by_obj.get(id(obj))
            if e is not None:
                self._count(e)  # counted under the lock that found it: no release slips in
        if e is None:
            tname = type_name(type(obj))
            rep = short_repr(obj)  # user code: outside the lock
            pack = self._current_pack()
            with self._lock:
                e = self._by_obj.get(id(obj))
                if e is None:
                    e = _Entry(f"{EPOCH}.{secrets.token_hex(12)}", obj, tname, rep, pack)
                    self._by_id[e.hid] = e
                    self._by_obj[id(obj)] = e
                self._count(e)
        m: dict[str, Any] = {"id": e.hid, "owner": self.owner, "type": e.type, "repr": e.repr}
        if e.pack:
            m["pack"] = e.pack
        return m

    def _count(self, e: _Entry) -> None:
        pending = getattr(self._tls, "pending", None)
        if pending is None:
            e.sent += 1
        else:
            e.pending += 1
            pending.append(e)

    def _current_pack(self) -> str | None:
        fn = self.pack_of_current_node
        try:
            return fn() if fn is not None else None
        except Exception:
            return None

    # ------------------------------------------------------------------ receiving

    def resolve(self, content: Any) -> Any:
        """The object a handle of this process names; :class:`HandleError` when it is gone."""
        hid = str(content.get("id")) if isinstance(content, dict) else ""
        with self._lock:
            e = self._by_id.get(hid)
        if e is not None:
            return e.obj
        tname = content.get("type", "object") if isinstance(content, dict) else "object"
        if not hid.startswith(EPOCH + "."):
            raise HandleError(
                f"The {tname} handle {hid} was made by an earlier start of process {self.owner!r}: "
                "the object went when that process exited. Run the node that made it again."
            )
        raise HandleError(
            f"The {tname} object of handle {hid} is no longer held by process {self.owner!r}: "
            "the host released it. Keep the value (the output cache does) while it is passed on."
        )

    def release(self, pairs: Any) -> int:
        """``pairs``: ``[[id, n], ...]``, the host letting go of ``n`` sends of each id.
        Entries with no send left go; returns how many went."""
        dropped = []
        with self._lock:
            for pair in pairs or ():
                try:
                    hid, n = str(pair[0]), int(pair[1])
                except (TypeError, ValueError, IndexError):
                    continue
                e = self._by_id.get(hid)
                if e is None:
                    continue
                e.sent -= n
                if e.sent <= 0 and e.pending <= 0:
                    dropped.append(self._forget(e))
        n = len(dropped)
        del dropped  # the objects go here, outside the lock
        return n

    def _forget(self, e: _Entry) -> Any:
        del self._by_id[e.hid]
        self._by_obj.pop(id(e.obj), None)
        obj, e.obj = e.obj, None
        return obj

    # ------------------------------------------------------------------ introspection

    def __len__(self) -> int:
        return len(self._by_id)

    def entries(self) -> list[dict[str, Any]]:
        """What the table holds: ``{id, type, repr, pack, sent}`` per object."""
        with self._lock:
            return [{"id": e.hid, "type": e.type, "repr": e.repr, "pack": e.pack, "sent": e.sent} for e in self._by_id.values()]
