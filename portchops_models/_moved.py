"""Import paths of modules that moved into the layer folders keep working.

The package was flat before its layers got folders of their own; an app or a
script may still say ``from portchops_models.shape import shape_of``. Each old
path below is served by the module at its new place (the same module object, so
``portchops_models.shape is portchops_models.models.shape``), found lazily by a
meta path finder: nothing is imported before the old name is. New code uses the
new paths; the three documented policy paths (`portchops_models.retry`,
``metrics``, ``tables``) are real modules.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

__all__ = ["MOVED", "install"]

#: old module path -> where it lives now.
MOVED: dict[str, str] = {
    f"portchops_models.{old}": f"portchops_models.{new}"
    for old, new in {
        "bus": "cache.bus",
        "coherence": "cache.coherence",
        "connection": "transport.connection",
        "cursor": "dynamo.cursor",
        "deadline": "transport.deadline",
        "decoding": "models.decoding",
        "drive": "transport.drive",
        "expressions": "dynamo.expressions",
        "iam": "admin.iam",
        "idempotency": "dynamo.idempotency",
        "limits": "dynamo.limits",
        "logs": "observe.logs",
        "projections": "models.projections",
        "requests": "ops.requests",
        "shape": "models.shape",
        "tracing": "observe.tracing",
        "transaction_plan": "ops.transaction_plan",
        "wire": "transport.wire",
        "migrate.backfill": "migrate.backfills.backfill",
        "migrate.lease": "migrate.backfills.lease",
        "migrate.rate": "migrate.backfills.rate",
        "migrate.worker": "migrate.backfills.worker",
    }.items()
}


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path and hands out the module at its new place."""

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def __init__(self) -> None:
        self._specs: dict[str, importlib.machinery.ModuleSpec | None] = {}

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(MOVED[spec.name])
        self._specs[module.__name__] = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run (the module at the new place has run already); the import
        system gave it the old path's spec, so it gets its own back."""
        module.__spec__ = self._specs.pop(module.__name__, module.__spec__)


def install() -> None:
    """Put the finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
