"""``ProxiedSingleton``: one instance for all processes, living in the shared process.

Where the class lives (the shared Python process, or a plain Python process that no host
started), ``Cls()`` returns the one real instance, created on first use. In an isolated
process ``Cls()`` returns a :class:`SingletonProxy`: its public methods call
``$singleton.call(module, qualname, method, args, kwargs)`` on the host, which forwards
to the shared process's :class:`SingletonService`.

Proxy methods:

* ``async def`` methods: ``await cache.get_model(x)`` in async code (any thread running
  an asyncio loop) — the call is sent at once and an awaitable comes back;
  ``cache.get_model(x)`` in plain code (a worker thread serving a ``def`` method) waits
  and returns the value itself.
* ``def`` methods: always wait and return the value, as the real object would.
"""

from __future__ import annotations

import importlib
import inspect
import os
import threading
from abc import ABCMeta
from typing import Any

from pyisolate_runtime import host as _host
from pyisolate_runtime.rpc import NotCallable
from pyisolate_runtime.rpc.registry import is_method_like

__all__ = ["ProxiedSingleton", "SingletonProxy", "SingletonService"]

_instances: dict[type, Any] = {}
_lock = threading.RLock()
_proxies: dict[type, "SingletonProxy"] = {}
_MISSING = object()

_classes: dict[tuple[str, str], type] = {}
"""Every ProxiedSingleton class defined in this process, by (module, qualname)."""
_shared_modules_loaded = False


def _lives_elsewhere() -> bool:
    return _host.is_connected() and not _host.is_shared_process()


class _SingletonMeta(ABCMeta):
    def __init__(cls, name: str, bases: tuple, ns: dict, **kw: Any) -> None:
        super().__init__(name, bases, ns, **kw)
        if bases:  # not ProxiedSingleton itself
            _classes[(cls.__module__, cls.__qualname__)] = cls

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls is ProxiedSingleton:
            raise TypeError("ProxiedSingleton is a base class: derive a class from it")
        if _lives_elsewhere():
            proxy = _proxies.get(cls)
            if proxy is None:
                proxy = _proxies.setdefault(cls, SingletonProxy(cls))
            return proxy
        inst = _instances.get(cls)
        if inst is None:
            with _lock:
                inst = _instances.get(cls)
                if inst is None:
                    inst = super().__call__(*args, **kwargs)
                    _instances[cls] = inst
        return inst


class ProxiedSingleton(metaclass=_SingletonMeta):
    """Base class of a service shared by every process of a host.

    Define the class in a module that the shared process and the isolated processes can
    all import. The shared process creates the instance (with no arguments) on first
    use; isolated processes call its public methods through the host. Arguments and
    results cross the process boundary, so they must be plain data (or tensors).

    Example::

        class ModelCache(ProxiedSingleton):
            def __init__(self):
                self.models = {}

            async def get_model(self, name):
                if name not in self.models:
                    self.models[name] = load_expensive_model(name)
                return self.models[name]

        # anywhere, in async code:
        model = await ModelCache().get_model("sd15")
    """


class SingletonProxy:
    """Stands for a :class:`ProxiedSingleton` living in the shared process."""

    __slots__ = ("_cls", "_methods")

    def __init__(self, cls: type) -> None:
        self._cls = cls
        self._methods: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        cls = self._cls
        if name.startswith("_"):
            raise AttributeError(
                f"{cls.__qualname__}.{name} is private: only public methods of a "
                "ProxiedSingleton can be used from an isolated process"
            )
        fn = self._methods.get(name)
        if fn is not None:
            return fn
        attr = inspect.getattr_static(cls, name, _MISSING)
        if attr is _MISSING or not is_method_like(attr):
            if attr is not _MISSING and not isinstance(attr, property):
                return getattr(cls, name)  # a plain class attribute: the same here
            raise AttributeError(
                f"{cls.__qualname__} lives in the shared Python process: from an isolated "
                f"process only its public methods can be used, and {name!r} is not one"
            )
        func = attr.__func__ if isinstance(attr, (staticmethod, classmethod)) else attr
        is_async = inspect.iscoroutinefunction(func)
        target = (cls.__module__, cls.__qualname__, name)

        def method(*args: Any, **kwargs: Any) -> Any:
            ep = _host._ep(f"call {cls.__qualname__}.{name}")
            call_args = (*target, list(args), kwargs)
            if is_async:
                return ep.call_auto("$singleton", "call", call_args)
            return ep.call("$singleton", "call", call_args)

        method.__name__ = name
        method.__qualname__ = f"{cls.__qualname__}.{name}"
        method.__doc__ = getattr(func, "__doc__", None)
        self._methods[name] = method
        return method

    def __repr__(self) -> str:
        return f"<proxy of {self._cls.__module__}.{self._cls.__qualname__} in the shared process>"


def _load_shared_modules() -> None:
    """Import, once, every module in the folders the host configured for shared modules
    (``config.sys_path``), so that the ProxiedSingleton classes they define are registered.
    Only those folders' own modules are imported, never a name a caller sent."""
    global _shared_modules_loaded
    with _lock:
        if _shared_modules_loaded:
            return
        _shared_modules_loaded = True
    folders = _host.config().get("sys_path") or []
    for folder in folders if isinstance(folders, list) else []:
        try:
            entries = sorted(os.listdir(folder))
        except OSError:
            continue
        for entry in entries:
            full = os.path.join(folder, entry)
            name = entry[:-3] if entry.endswith(".py") else entry
            is_pkg = os.path.isfile(os.path.join(full, "__init__.py"))
            if not (entry.endswith(".py") or is_pkg) or not name.isidentifier() or name.startswith("_"):
                continue
            try:
                importlib.import_module(name)
            except Exception as e:  # one broken module does not hide the others
                _host_log(f"shared module {name} ({full}) failed to import: {type(e).__name__}: {e}")


def _host_log(line: str) -> None:
    try:
        from pyisolate_runtime.rpc.log import log

        log(line)
    except Exception:
        pass


def _resolve_class(module: str, qualname: str) -> type:
    """The registered ProxiedSingleton class ``module.qualname``: classes register themselves
    when defined; nothing is imported because a caller named it."""
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise NotCallable(f"{module!r}.{qualname!r} does not name a ProxiedSingleton class")
    cls = _classes.get((module, qualname))
    if cls is None:
        _load_shared_modules()
        cls = _classes.get((module, qualname))
    if cls is None:
        raise NotCallable(
            f"{module}.{qualname} is not a ProxiedSingleton class known to the shared process: define it in "
            "a shared module (a folder the host lists in sharedModules) or in a shared pack"
        )
    return cls


class SingletonService:
    """``$singleton``, served by the shared process."""

    def call(self, module: str, qualname: str, method: str, args: list, kwargs: dict | None) -> Any:
        """Call ``method`` on the one instance of ``module.qualname`` (created on first use),
        awaiting it when it is a coroutine."""
        cls = _resolve_class(module, qualname)
        attr = inspect.getattr_static(cls, method, _MISSING) if isinstance(method, str) else _MISSING
        if not isinstance(method, str) or method.startswith("_") or attr is _MISSING or not is_method_like(attr):
            raise NotCallable(f"{qualname}.{method} is not a public method of ProxiedSingleton {qualname}")
        inst = cls()
        result = getattr(inst, method)(*(args or ()), **(kwargs or {}))
        if inspect.isawaitable(result):
            result = _host.run_async(result)
        return result
