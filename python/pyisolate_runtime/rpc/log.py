"""Lines on stderr from the runtime itself (``pyisolate: …``).

They never raise: with the host gone, stderr may be a broken pipe, and whatever was
being done (closing, exiting) must go on.
"""

from __future__ import annotations

import sys
import traceback

__all__ = ["log", "log_exception"]


def log(line: str) -> None:
    """Write ``pyisolate: <line>`` to stderr."""
    try:
        sys.stderr.write(f"pyisolate: {line}\n")
        sys.stderr.flush()
    except Exception:
        pass


def log_exception(line: str) -> None:
    """:func:`log` the line, then the traceback of the exception being handled."""
    log(f"{line}:\n{traceback.format_exc().rstrip()}")
