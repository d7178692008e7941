"""Calls both ways over the host connection (see docs/protocol.md)."""

from .endpoint import *  # noqa: F401,F403
from .endpoint import __all__, current_job_cancelled  # noqa: F401
