"""``ExtensionBase``: a node pack's extension class, whose async methods serve the routes of
its ``route_manifest.json``.

.. code-block:: python

    class MyNodeExtension(ExtensionBase):
        async def get_status(self, request):
            return {"status": "ok"}

pyisolate makes one instance (no arguments) in the pack's process when its routes are
checked or first requested, and calls :meth:`on_module_loaded` with the pack's module.
"""

from __future__ import annotations

from types import ModuleType

__all__ = ["ExtensionBase"]


class ExtensionBase:
    """Base class of a pack's extension class (see the module doc)."""

    async def on_module_loaded(self, module: ModuleType) -> None:
        """Called once, with the pack's module, after the instance is made."""
