"""``ModelCache``: a ProxiedSingleton example, a model cache shared by every process.

This module is a *shared module*: every Python process of the host must be able to import
it by the same name, so its folder is passed to the host as ``sharedModules``
(``createHost({ sharedModules: ["examples/shared_modules"] })``). The one real instance lives
in the shared Python process; in an isolated process ``ModelCache()`` returns a proxy whose
methods call that instance through the host. A model is loaded once, whichever process asks
first, and every process gets the same one.

The "model" is cheap and deterministic so the example runs anywhere: a dict with a 4x4
float32 weight tensor (seeded from the name), an id made when it was loaded, and which load
it was. It crosses to isolated processes as plain data, the weights through shared memory.
"""
from __future__ import annotations

import os
import threading
import uuid
import zlib

from pyisolate import ProxiedSingleton

__all__ = ["ModelCache", "load_expensive_model", "predict"]


def load_expensive_model(name: str, load_number: int) -> dict:
    """"Loads" the model ``name``: weights seeded from the name, so every load of a name
    gives the same weights (but a new ``id``)."""
    import torch

    generator = torch.Generator().manual_seed(zlib.crc32(name.encode("utf-8")))
    return {
        "name": name,
        "weights": torch.rand((4, 4), generator=generator, dtype=torch.float32),
        "id": uuid.uuid4().hex[:12],
        "load": load_number,
        "loaded_in_pid": os.getpid(),
    }


def predict(model: dict, x: float) -> float:
    """What a node does with the model: ``x`` times the sum of the weights."""
    return float(model["weights"].sum().item()) * x


class ModelCache(ProxiedSingleton):
    """One cache of models for every process of the host."""

    def __init__(self) -> None:
        self.models: dict = {}
        self.loads: dict = {}
        self._lock = threading.Lock()

    async def get_model(self, name: str) -> dict:
        """The model ``name``, loaded on first use."""
        with self._lock:  # two processes may ask at the same moment
            if name not in self.models:
                self.loads[name] = self.loads.get(name, 0) + 1
                self.models[name] = load_expensive_model(name, self.loads[name])
            return self.models[name]

    def load_counts(self) -> dict:
        """How many times each model was loaded (1 each, if the cache does its job)."""
        return dict(self.loads)
