"""Segments across the nodes of a Ray cluster (the Ray backend).

Under the Ray backend every process that writes or reads segments knows its Ray node: a pack's
process from its actor, the shared process from the host's relay actor, through
``PYISOLATE_RAY_NODE`` (the node id), ``PYISOLATE_RAY_ACTOR`` (the actor that serves this
process's segments to other nodes) and ``PYISOLATE_RAY_RELAY`` (that actor's Unix socket on
this node, ``@name`` for an abstract one, with ``PYISOLATE_RAY_RELAY_TOKEN``). A segment written here is sent with where it lives: the TensorRef map gains
``ray: {node, actor}``. A process that receives a ref decides by node identity: a segment on its
own node is mapped as on one machine; one on another node is fetched by its own actor, which
gets the bytes from the producing actor through Ray's object store and writes them into a new
segment on this node, which this process maps and unlinks at once (the mapping stays; nobody
else knows the copy). The host never sees the bytes.

A ref without ``ray`` was written on the host's machine, whose node is
``PYISOLATE_RAY_HOST_NODE`` (empty when the host's machine is not a Ray node; its own processes
then have ``PYISOLATE_RAY_NODE=-``). Without ``PYISOLATE_RAY_NODE`` (the local backend) nothing
here applies.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

from .segments import TensorCrossingError, host_id, unlink_segment

__all__ = ["done", "local_segment", "origin"]

ENV_NODE = "PYISOLATE_RAY_NODE"
ENV_ACTOR = "PYISOLATE_RAY_ACTOR"
ENV_RELAY = "PYISOLATE_RAY_RELAY"
ENV_TOKEN = "PYISOLATE_RAY_RELAY_TOKEN"
ENV_HOST_NODE = "PYISOLATE_RAY_HOST_NODE"
NO_NODE = "-"
"""``PYISOLATE_RAY_NODE`` of a process of a host machine that is not a Ray node (Ray Client)."""

FETCH_TIMEOUT_S = 600.0


def origin() -> dict[str, str] | None:
    """``{node, actor}`` for segments this process writes; None outside the Ray backend."""
    node = os.environ.get(ENV_NODE)
    actor = os.environ.get(ENV_ACTOR)
    if not node or not actor or node == NO_NODE:
        return None
    return {"node": node, "actor": actor}


def _short(node: str) -> str:
    return node[:12] if node else "?"


def _who() -> str:
    pack = os.environ.get("PYISOLATE_PACK") or "this process"
    node = os.environ.get(ENV_NODE, "")
    if node == NO_NODE:
        return f'pack "{pack}" on the host\'s machine (not a Ray node)'
    return f'pack "{pack}" on Ray node {_short(node)}'


def local_segment(ref: dict[str, Any], what: str) -> tuple[str, int, bool]:
    """(segment, offset, fetched): where the bytes of ``ref`` can be mapped in this process. A
    segment on another Ray node is fetched first (``fetched``: the caller maps the copy, then
    calls :func:`done` with it). ``what`` describes the value in errors."""
    segment = ref["segment"]
    offset = int(ref["offset"])
    what = what[:1].upper() + what[1:]
    here = os.environ.get(ENV_NODE)
    if not here:
        return segment, offset, False
    where = ref.get("ray")
    if isinstance(where, dict) and where.get("node"):
        node = str(where["node"])
        actor = str(where.get("actor") or "")
    else:
        node = os.environ.get(ENV_HOST_NODE, "")
        actor = ""
    if node == (os.environ.get(ENV_HOST_NODE, "") if here == NO_NODE else here):
        return segment, offset, False
    if not actor:
        raise TensorCrossingError(
            f"{what} (segment {segment}) was written on the host's machine, which is not a node of the "
            f"Ray cluster, so {_who()} cannot reach it. Run the host on a Ray node (the driver then "
            "relays tensors through Ray), or pin this pack to the host's node."
        )
    relay = os.environ.get(ENV_RELAY)
    if not relay or here == NO_NODE:
        raise TensorCrossingError(f"{what} lives on Ray node {_short(node)}, and {_who()} has no Ray actor to fetch it.")
    req = {"segment": segment, "offset": offset, "nbytes": int(ref["nbytes"]), "node": node, "actor": actor,
           "host": host_id(), "token": os.environ.get(ENV_TOKEN, "")}
    try:
        answer = _ask(relay, req)
    except OSError as e:
        raise TensorCrossingError(
            f"{what} lives on Ray node {_short(node)}; {_who()} could not ask its Ray actor to fetch it "
            f"({type(e).__name__}: {e})."
        ) from None
    if "error" in answer:
        raise TensorCrossingError(
            f"{what} lives on Ray node {_short(node)}; {_who()} could not fetch it through Ray: {answer['error']}"
        )
    return str(answer["segment"]), 0, True


def done(segment: str) -> None:
    """A fetched copy is mapped: its file can go (the mapping stays valid)."""
    unlink_segment(segment)


def _ask(path: str, req: dict[str, Any]) -> dict[str, Any]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(FETCH_TIMEOUT_S)
    try:
        s.connect("\0" + path[1:] if path.startswith("@") else path)
        s.sendall((json.dumps(req) + "\n").encode())
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("the actor closed the connection without an answer")
            buf += chunk
    finally:
        s.close()
    return json.loads(buf.split(b"\n", 1)[0])
