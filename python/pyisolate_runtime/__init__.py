"""pyisolate's Python runtime: the process a pyisolate host starts for node packs.

``python -m pyisolate_runtime`` connects to the host, imports the packs it is told to and
serves calls (see ``child``). Node code reaches the host through ``pyisolate_runtime.host``
(also importable as ``pyisolate.host``). The runtime depends on the standard library only,
so it never fixes a version of anything a pack installs.
"""

__version__ = "0.1.0"
