"""The Ray backend's driver: one process per host, in an environment that has Ray.

The host starts it as ``python ray_driver.py`` (a script, so that Ray ships the actor class
below by value and no node needs pyisolate importable in its Ray workers). It connects to
the host's Unix socket (``PYISOLATE_RAY_SOCKET``) with the host's token
(``PYISOLATE_RAY_TOKEN``), joins the cluster (``PYISOLATE_RAY_ADDRESS``: an address, or
``auto`` for a local cluster this driver starts), and then answers JSON lines:

* ``{"id", "op": "launch", "key", "name", "cmd", "env", "cwd", "resources"}``: creates an actor
  with those resources; the actor starts ``cmd`` (the pack's Python running
  ``pyisolate_runtime``) on its node, and that process connects back to the host itself.
  Answer: ``{"id", "ok": true, "pid", "node": {"id", "ip"}}``; later, once, the event
  ``{"ev": "exit", "key", "code", "signal", "reason"}``.
* ``{"op": "kill", "key", "signal"}``: signals the process group; ``SIGKILL`` also ends the actor.
* ``{"id", "op": "info"}``: the cluster (Ray version, nodes with their resources).
* ``{"id", "op": "fetch", "segment", "offset", "nbytes", "actor"}``: the bytes of a segment of
  another node, through Ray, into a new segment of the host's on this machine: ``{"id", "ok":
  true, "segment"}`` (the host's own reads: ``viewTensor``).
* ``{"op": "unlink", "actor", "segment"}``: that actor unlinks a segment of its node.
* ``{"id", "op": "relays"}``: what each actor relayed (tensor segments fetched from and served
  to other Ray nodes): ``{"id", "ok": true, "relays": {name: {fetched, fetched_bytes, served,
  served_bytes, unlinked}}}``, by pack name (``"host"`` for the host's relay).

Tensors between Ray nodes: every actor serves the segments of its node to other actors
(``read``, whose answer travels through Ray's object store) and, on a Unix socket of its own
node, fetches segments of other nodes for its pack's process into new local segments
(``values/ray_segments.py`` is that process's side). When the driver runs on a Ray node (not
through Ray Client), a relay actor on that node does the same for the processes of the host's
machine (the shared process); the hello then carries ``relay: {node, actor, socket, token}``.

Nothing here is imported by a pack's process: Ray stays out of every pack's environment.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import traceback

SEGMENT_NAME = re.compile(r"pyisolate-([0-9A-Za-z]+)-[0-9A-Za-z]+")
FETCH_TIMEOUT_S = 600.0


class PackActor:
    """One isolated pack on a Ray node: starts the pack's runtime process and reports its end.

    The process is the actor's child (its parent-death signal is SIGKILL), so losing the actor
    or its node ends the process too. Its output goes to the actor's output, which Ray sends
    to the driver with the actor's name in front.
    """

    def __init__(self, label: str, name: str, host_id: str) -> None:
        self.label = label
        self.name = name
        self.host_id = host_id
        self.shm = os.environ.get("PYISOLATE_SHM_DIR") or "/dev/shm"
        self.proc: subprocess.Popen | None = None
        self.relay_path: str | None = None
        self.token = secrets.token_hex(16)
        self.peers: dict[str, object] = {}
        self.counts = {"fetched": 0, "fetched_bytes": 0, "served": 0, "served_bytes": 0, "unlinked": 0}
        self.count_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"pyisolate[{self.label}]"

    def start(self, cmd: list, env: dict, cwd: str | None) -> dict:
        import ctypes

        import ray

        full = dict(os.environ)
        full.update(env)
        self.shm = full.get("PYISOLATE_SHM_DIR") or "/dev/shm"
        node = ray.get_runtime_context().get_node_id()
        full.update({"PYISOLATE_RAY_NODE": node, "PYISOLATE_RAY_ACTOR": self.name,
                     "PYISOLATE_RAY_RELAY": self._listen(), "PYISOLATE_RAY_RELAY_TOKEN": self.token})

        def child_setup() -> None:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG

        self.proc = subprocess.Popen(
            cmd, env=full, cwd=cwd or None, start_new_session=True, preexec_fn=child_setup,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for stream, out in ((self.proc.stdout, sys.stdout), (self.proc.stderr, sys.stderr)):
            threading.Thread(target=_pump, args=(stream, out), daemon=True).start()
        return {"pid": self.proc.pid, "node": {"id": node, "ip": ray.util.get_node_ip_address()}}

    def relay(self) -> dict:
        """Serves the processes of this node that are not actors' children (the host's)."""
        import ray

        node = ray.get_runtime_context().get_node_id()
        return {"node": node, "ip": ray.util.get_node_ip_address(), "actor": self.name,
                "socket": self._listen(), "token": self.token}

    def read(self, segment: str, offset: int, nbytes: int) -> bytes:
        """The bytes [offset, offset+nbytes) of a segment of this node (for an actor on another)."""
        m = SEGMENT_NAME.fullmatch(segment) if isinstance(segment, str) else None
        if m is None or m.group(1) != self.host_id:
            raise ValueError(f"{segment!r} is not a segment of this host")
        path = os.path.join(self.shm, f"pyisolate-{m.group(1)}", segment)
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read(nbytes)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"segment {segment} is gone from {self.shm} on its node: the host released it before it was fetched"
            ) from None
        if len(data) != nbytes:
            raise ValueError(f"segment {segment} holds fewer than {offset + nbytes} bytes")
        with self.count_lock:
            self.counts["served"] += 1
            self.counts["served_bytes"] += nbytes
        return data

    def unlink(self, segment: str) -> None:
        """Unlinks a segment of this node that the host let go of."""
        m = SEGMENT_NAME.fullmatch(segment) if isinstance(segment, str) else None
        if m is None or m.group(1) != self.host_id:
            return
        try:
            os.unlink(os.path.join(self.shm, f"pyisolate-{self.host_id}", segment))
        except FileNotFoundError:
            return
        with self.count_lock:
            self.counts["unlinked"] += 1

    def stats(self) -> dict:
        with self.count_lock:
            return dict(self.counts)

    # --- the local socket: fetches for the processes of this node

    def _listen(self) -> str:
        if self.relay_path is None:
            # An abstract socket (Linux): no file to leave behind when the actor is killed;
            # the token keeps other users of the node out.
            name = f"pyisolate-relay-{secrets.token_hex(8)}"
            srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            srv.bind("\0" + name)
            srv.listen(16)
            threading.Thread(target=self._accept, args=(srv,), daemon=True).start()
            self.relay_path = "@" + name
        return self.relay_path

    def _accept(self, srv: socket.socket) -> None:
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            buf = b""
            while b"\n" not in buf:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            try:
                req = json.loads(buf.split(b"\n", 1)[0])
                if not secrets.compare_digest(str(req.get("token", "")), self.token):
                    answer = {"error": "wrong relay token"}
                else:
                    answer = self._fetch(req)
            except Exception as e:  # one line for the process that asked
                answer = {"error": f"{type(e).__name__}: {_first_line(e)}"}
            conn.sendall((json.dumps(answer) + "\n").encode())

    def _fetch(self, req: dict) -> dict:
        import ray

        name = str(req["actor"])
        peer = self.peers.get(name)
        if peer is None:
            try:
                peer = ray.get_actor(name)
            except ValueError:
                return {"error": f"the Ray actor {name} that wrote it is gone (its pack's process ended)"}
            self.peers[name] = peer
        nbytes = int(req["nbytes"])
        try:
            data = ray.get(peer.read.remote(str(req["segment"]), int(req["offset"]), nbytes), timeout=FETCH_TIMEOUT_S)
        except Exception as e:
            self.peers.pop(name, None)
            cause = getattr(e, "cause", None) or e
            return {"error": f"{type(cause).__name__}: {_first_line(cause)}"}
        host = str(req.get("host") or self.host_id)
        if not re.fullmatch(r"[0-9A-Za-z]+", host):
            return {"error": f"bad host id {host!r}"}
        segment = _write_segment(self.shm, host, data)
        with self.count_lock:
            self.counts["fetched"] += 1
            self.counts["fetched_bytes"] += nbytes
        return {"segment": segment}

    def wait(self) -> int:
        assert self.proc is not None
        return self.proc.wait()

    def signal(self, sig: int) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass


def _remove_segments(shm: str, host: str) -> int:
    """Removes host ``host``'s segments on this node, and its folder when that is left empty."""
    folder = os.path.join(shm, f"pyisolate-{host}")
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    n = 0
    for name in names:
        if SEGMENT_NAME.fullmatch(name):
            try:
                os.unlink(os.path.join(folder, name))
                n += 1
            except OSError:
                pass
    try:
        os.rmdir(folder)
    except OSError:
        pass
    return n


def _write_segment(shm: str, host: str, data: bytes) -> str:
    """A new segment of host ``host`` on this node holding ``data``; returns its name."""
    folder = os.path.join(shm, f"pyisolate-{host}")
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    name = f"pyisolate-{host}-{secrets.token_hex(8)}"
    path = os.path.join(folder, name)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.posix_fallocate(fd, 0, max(len(data), 1))
        except OSError as e:
            raise OSError(e.errno, f"not enough shared memory in {shm} on this Ray node for {len(data)} bytes") from None
        view = memoryview(data)
        off = 0
        while off < len(view):
            off += os.write(fd, view[off : off + (1 << 30)])
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    os.close(fd)
    return name


def _pump(stream, out) -> None:
    for raw in iter(stream.readline, b""):
        out.write(raw.decode("utf-8", "replace"))
        out.flush()


class Driver:
    def __init__(self, sock: socket.socket) -> None:
        import ray

        self.ray = ray
        self.sock = sock
        self.lock = threading.Lock()
        self.actors: dict[str, object] = {}
        self.nodes_of: dict[str, dict] = {}
        self.ended: set[str] = set()
        self.names: dict[str, str] = {}
        self.counter = itertools.count(1)
        self.host_id = os.environ.get("PYISOLATE_HOST_ID") or str(os.getppid())
        self.prefix = f"pyisolate-{self.host_id}-{secrets.token_hex(4)}"
        self.Actor = ray.remote(max_concurrency=8, max_restarts=0)(PackActor)
        self.host_relay = None
        self.host_node: str | None = None

    def open_relay(self) -> dict | None:
        """A relay actor on this driver's own Ray node, for the host machine's processes."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        node = self.ray.get_runtime_context().get_node_id()
        name = f"{self.prefix}-host"
        actor = self.Actor.options(name=name, num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote("host", name, self.host_id)
        info = self.ray.get(actor.relay.remote(), timeout=120)
        self.host_relay = actor
        self.host_node = info["node"]
        return info

    def send(self, msg: dict) -> None:
        data = (json.dumps(msg) + "\n").encode()
        with self.lock:
            self.sock.sendall(data)

    def node_text(self, node: dict | None) -> str:
        if not node:
            return "a Ray node"
        return f"Ray node {node['id'][:12]} ({node['ip']})"

    def launch(self, req: dict) -> None:
        key = req["key"]
        res = req.get("resources") or {}
        opts: dict = {}
        if res.get("num_cpus") is not None:
            opts["num_cpus"] = res["num_cpus"]
        if res.get("num_gpus"):
            opts["num_gpus"] = res["num_gpus"]
        if res.get("memory"):
            opts["memory"] = res["memory"]
        if res.get("resources"):
            opts["resources"] = res["resources"]
        try:
            name = f"{self.prefix}-{next(self.counter)}"
            actor = self.Actor.options(name=name, **opts).remote(req["name"], name, self.host_id)
            self.actors[key] = actor
            self.names[key] = req["name"]
            ref = actor.start.remote(req["cmd"], req["env"], req.get("cwd"))
            ready, _ = self.ray.wait([ref], timeout=5.0)
            if not ready:
                self.send({"ev": "line", "key": key, "text": f"waiting for a Ray node with {json.dumps(opts)} free (Ray places the actor once one has)"})
            started = self.ray.get(ref)
        except Exception as e:  # placement or start failed: say why, in one line
            self.send({"id": req["id"], "ok": False, "error": f"{type(e).__name__}: {_first_line(e)}"})
            self.actors.pop(key, None)
            return
        self.nodes_of[key] = started["node"]
        self.send({"id": req["id"], "ok": True, "pid": started["pid"], "node": started["node"], "actor": name})
        threading.Thread(target=self.watch, args=(key, actor), daemon=True).start()

    def watch(self, key: str, actor) -> None:
        node = self.nodes_of.get(key)
        try:
            code = self.ray.get(actor.wait.remote())
            msg = {"ev": "exit", "key": key, "code": code if code >= 0 else None,
                   "signal": signal.Signals(-code).name if code < 0 else None}
        except Exception as e:
            alive = self.node_alive(node)
            why = "was lost" if alive is False else "ended"
            msg = {"ev": "exit", "key": key, "code": None, "signal": None,
                   "reason": f"its Ray actor died: {self.node_text(node)} {why} ({type(e).__name__}: {_first_line(e)})"}
        self.actors.pop(key, None)
        try:
            self.ray.kill(actor, no_restart=True)
        except Exception:
            pass
        self.send(msg)

    def node_alive(self, node: dict | None) -> bool | None:
        if not node:
            return None
        try:
            for n in self.ray.nodes():
                if n.get("NodeID") == node["id"]:
                    return bool(n.get("Alive"))
        except Exception:
            return None
        return None

    def kill(self, req: dict) -> None:
        actor = self.actors.get(req["key"])
        if actor is None:
            return
        sig = getattr(signal, str(req.get("signal") or "SIGTERM"), signal.SIGTERM)
        try:
            actor.signal.remote(int(sig))
        except Exception:
            pass
        if sig == signal.SIGKILL:
            # A node that is gone cannot signal anything: ending the actor makes its end known.
            threading.Timer(2.0, self._end_actor, args=(req["key"],)).start()

    def _end_actor(self, key: str) -> None:
        actor = self.actors.get(key)
        if actor is not None:
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception:
                pass

    def info(self, req: dict) -> None:
        nodes = []
        for n in self.ray.nodes():
            nodes.append({
                "id": n.get("NodeID"), "ip": n.get("NodeManagerAddress"), "alive": bool(n.get("Alive")),
                "resources": {k: v for k, v in (n.get("Resources") or {}).items() if not k.startswith("node:")},
            })
        self.send({"id": req["id"], "ok": True, "version": self.ray.__version__, "nodes": nodes})

    def unlink(self, req: dict) -> None:
        try:
            self.ray.get_actor(str(req["actor"])).unlink.remote(str(req["segment"]))
        except Exception:
            pass  # its actor is gone: the segment goes with the host's folder on that node at close

    def cleanup(self) -> None:
        """At shutdown: removes the host's segments on every other node its actors ran on (a
        task on each; the host removes its own folder on its machine)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        task = self.ray.remote(num_cpus=0, max_retries=0)(_remove_segments)
        shm = os.environ.get("PYISOLATE_SHM_DIR") or "/dev/shm"
        refs = []
        for node in {n["id"] for n in self.nodes_of.values()} - {self.host_node}:
            try:
                refs.append(task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(shm, self.host_id))
            except Exception:
                pass
        if refs:
            try:
                ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=15)
                n = sum(self.ray.get(ready))
                print(f"removed {n} segments of this host on {len(ready)} of {len(refs)} other Ray nodes", file=sys.stderr, flush=True)
            except Exception as e:
                print(f"could not remove this host's segments on other Ray nodes: {type(e).__name__}: {_first_line(e)}", file=sys.stderr, flush=True)

    def fetch(self, req: dict) -> None:
        try:
            actor = self.ray.get_actor(str(req["actor"]))
        except ValueError:
            self.send({"id": req["id"], "ok": False, "error": f"the Ray actor {req['actor']} that wrote it is gone (its pack's process ended)"})
            return
        try:
            data = self.ray.get(actor.read.remote(str(req["segment"]), int(req["offset"]), int(req["nbytes"])), timeout=FETCH_TIMEOUT_S)
            shm = os.environ.get("PYISOLATE_SHM_DIR") or "/dev/shm"
            self.send({"id": req["id"], "ok": True, "segment": _write_segment(shm, self.host_id, data)})
        except Exception as e:
            cause = getattr(e, "cause", None) or e
            self.send({"id": req["id"], "ok": False, "error": f"{type(cause).__name__}: {_first_line(cause)}"})

    def relays(self, req: dict) -> None:
        every = list(self.actors.items()) + ([("host", self.host_relay)] if self.host_relay is not None else [])
        out: dict = {}
        for key, actor in every:
            try:
                out[self.names.get(key, key)] = self.ray.get(actor.stats.remote(), timeout=30)
            except Exception:
                pass
        self.send({"id": req["id"], "ok": True, "relays": out})

    def serve(self) -> None:
        buf = b""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                req = json.loads(line)
                op = req.get("op")
                if op == "launch":
                    threading.Thread(target=self.launch, args=(req,), daemon=True).start()
                elif op == "kill":
                    self.kill(req)
                elif op == "info":
                    threading.Thread(target=self.info, args=(req,), daemon=True).start()
                elif op == "fetch":
                    threading.Thread(target=self.fetch, args=(req,), daemon=True).start()
                elif op == "unlink":
                    self.unlink(req)
                elif op == "relays":
                    threading.Thread(target=self.relays, args=(req,), daemon=True).start()
                elif op == "shutdown":
                    return


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def main() -> int:
    path = os.environ.get("PYISOLATE_RAY_SOCKET")
    token = os.environ.get("PYISOLATE_RAY_TOKEN")
    address = os.environ.get("PYISOLATE_RAY_ADDRESS") or "auto"
    if not path or not token:
        print("ray_driver.py is started by a pyisolate host (PYISOLATE_RAY_SOCKET, PYISOLATE_RAY_TOKEN)", file=sys.stderr)
        return 2
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    hello: dict = {"t": "hello", "token": token}
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")  # every line of a pack's output, as printed
    if address == "auto" or address.split(":")[0] in ("127.0.0.1", "localhost"):
        # A cluster on loopback (auto, tests, one machine): Ray would otherwise turn 127.0.0.1
        # into this machine's outward address, where that cluster does not listen.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError as e:
        hello["error"] = f"Ray is not installed in {sys.executable} ({e}); install it there (pip install ray)"
        sock.sendall((json.dumps(hello) + "\n").encode())
        return 1
    try:
        if address == "auto":
            # A local cluster of this machine alone, ended with this driver.
            # On loopback, like the rest of pyisolate's traffic on one machine.
            ray.init(include_dashboard=False, log_to_driver=True, configure_logging=False, _node_ip_address="127.0.0.1")
        else:
            extra = {"_node_ip_address": os.environ["PYISOLATE_RAY_NODE_IP"]} if os.environ.get("PYISOLATE_RAY_NODE_IP") else {}
            ray.init(address=address, log_to_driver=True, configure_logging=False, **extra)
    except Exception as e:
        hello["error"] = f"cannot join the Ray cluster at {address}: {type(e).__name__}: {_first_line(e)}"
        sock.sendall((json.dumps(hello) + "\n").encode())
        return 1
    hello["version"] = ray.__version__
    hello["address"] = ray.get_runtime_context().gcs_address
    driver = Driver(sock)
    if not address.startswith("ray://"):
        # Ray Client runs the driver's work on the head: no relay on the host's machine there.
        try:
            hello["relay"] = driver.open_relay()
        except Exception as e:
            hello["relay_error"] = f"{type(e).__name__}: {_first_line(e)}"
    driver.send(hello)
    try:
        driver.serve()
    except Exception:
        traceback.print_exc()
    finally:
        driver.cleanup()
        for actor in list(driver.actors.values()) + ([driver.host_relay] if driver.host_relay is not None else []):
            try:
                ray.kill(actor, no_restart=True)
            except Exception:
                pass
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
