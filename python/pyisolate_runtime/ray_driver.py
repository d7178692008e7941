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

Nothing here is imported by a pack's process: Ray stays out of every pack's environment.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import traceback


class PackActor:
    """One isolated pack on a Ray node: starts the pack's runtime process and reports its end.

    The process is the actor's child (its parent-death signal is SIGKILL), so losing the actor
    or its node ends the process too. Its output goes to the actor's output, which Ray sends
    to the driver with the actor's name in front.
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self.proc: subprocess.Popen | None = None

    def __repr__(self) -> str:
        return f"pyisolate[{self.label}]"

    def start(self, cmd: list, env: dict, cwd: str | None) -> dict:
        import ctypes

        import ray

        full = dict(os.environ)
        full.update(env)

        def child_setup() -> None:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG

        self.proc = subprocess.Popen(
            cmd, env=full, cwd=cwd or None, start_new_session=True, preexec_fn=child_setup,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for stream, out in ((self.proc.stdout, sys.stdout), (self.proc.stderr, sys.stderr)):
            threading.Thread(target=_pump, args=(stream, out), daemon=True).start()
        ctx = ray.get_runtime_context()
        return {"pid": self.proc.pid, "node": {"id": ctx.get_node_id(), "ip": ray.util.get_node_ip_address()}}

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
        self.Actor = ray.remote(max_concurrency=4, max_restarts=0)(PackActor)

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
            actor = self.Actor.options(**opts).remote(req["name"])
            self.actors[key] = actor
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
        self.send({"id": req["id"], "ok": True, "pid": started["pid"], "node": started["node"]})
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
    driver.send(hello)
    try:
        driver.serve()
    except Exception:
        traceback.print_exc()
    finally:
        for actor in list(driver.actors.values()):
            try:
                ray.kill(actor, no_restart=True)
            except Exception:
                pass
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
