"""The ``portchops`` command: its wiring (`main`), the demo and the seeds."""

from .main import app, main

__all__ = ["app", "main"]
