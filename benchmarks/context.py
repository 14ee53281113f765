"""What every scenario gets: the engine, the run's scale, and the data they share."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from portchops_models import User, UserProgress, UserRepository
from portchops_models.metrics import Metrics
from portchops_models.tables import create_table

from .common import use_layer

USER_COUNT = 1000


@dataclass
class Scale:
    """How much work a run does; ``quick`` is a smoke test of the harness only."""

    point_ops: int = 1000
    point_rounds: int = 5
    hit_passes: int = 20
    batch_keys: int = 1000
    batch_rounds: int = 21
    query_items: int = 1000
    query_rounds: int = 15
    projection_items: int = 100
    storm_items: int = 10_000
    stream_items: int = 50_000

    @classmethod
    def quick(cls) -> Scale:
        return cls(
            point_ops=100,
            point_rounds=2,
            hit_passes=5,
            batch_rounds=5,
            query_rounds=5,
            projection_items=20,
            storm_items=1000,
            stream_items=5000,
        )


@dataclass
class Bench:
    """The engine's URL (dynalite, no proxy), the scale, and the seeded users' ids."""

    engine_url: str
    scale: Scale
    user_ids: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def prepare(self) -> None:
        """Create the tables and write the 1,000 users scenarios 1 and 2 read."""
        use_layer(self.engine_url)
        for model in (User, UserProgress):
            create_table(model)
        users = [
            User(user_id=f"u-{i:05d}", email=f"user{i}@example.com", name=f"User {i}")
            for i in range(USER_COUNT)
        ]
        UserRepository(cache=None, metrics=Metrics()).batch_save(users)
        ids = [u.user_id for u in users]
        random.Random(42).shuffle(ids)  # read in an order unrelated to the write order
        self.user_ids = ids
