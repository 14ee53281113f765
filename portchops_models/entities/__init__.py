"""Single-table design: entities with key templates, collections, overloaded indexes.

Declare the physical table once (`EntityTable`), each entity on it with an
`Entity` (its type name and key templates), and read the entities that share a
partition together with a `Collection` (sync) or `AsyncCollection`. Every method
of `portchops_models.Repository` and `portchops_models.aio.AsyncRepository` works
on an entity, keyed by its natural key::

    class Marks(Repository[Mark, tuple[str, str, int]]):
        model = Mark

    Marks().get(("s1", "intro", 2))   # GetItem pk=STUDENT#s1, sk=MARK#intro#002

See `portchops_models.models.entity` for the templates and docs/entities.md for
the whole picture (when to choose one table, and when one per model).
"""

from __future__ import annotations

from ..models.entity import Entity, EntityTable, overloaded_index
from ..models.templates import KeyTemplate
from ..ops.collections import CollectionPage
from .aio import AsyncCollection
from .collection import Collection

__all__ = [
    "AsyncCollection",
    "Collection",
    "CollectionPage",
    "Entity",
    "EntityTable",
    "KeyTemplate",
    "overloaded_index",
]
