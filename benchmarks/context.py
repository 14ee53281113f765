"""What every scenario gets: the engine, the run's scale, and the data they share."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from portchops_models import User, UserProgress, UserRepository
from portchops_models.dynamo.limits import BATCH_WRITE_MAX
from portchops_models.metrics import Metrics
from portchops_models.tables import create_table

from .common import PROGRESS_TABLE, use_layer
from .minimal import MinimalClient

USER_COUNT = 1000
SEED_THREADS = 4


@dataclass
class Scale:
    """How much work a run does; ``quick`` is a smoke test of the harness only."""

    point_ops: int = 300
    point_rounds: int = 5
    hit_passes: int = 20
    concurrent_gets: int = 200
    concurrent_bursts: int = 2
    concurrent_rounds: int = 7
    batch_sizes: tuple[int, ...] = (100, 1000, 10_000)
    batch_rounds: tuple[int, ...] = (11, 7, 3)
    query_sizes: tuple[int, ...] = (1000, 10_000, 50_000)
    query_rounds: tuple[int, ...] = (9, 5, 2)
    projection_items: int = 100
    storm_items: int = 10_000
    storm_rounds: int = 2
    cache_keys: int = 5000
    cache_gets: int = 600
    cache_rounds: int = 3
    stream_items: int = 50_000
    backfill_rows: int = 16_000
    change_records: int = 20_000
    change_rounds: int = 7
    eviction_writes: int = 200
    profile_users: int = 20
    profile_rounds: int = 9

    @classmethod
    def quick(cls) -> Scale:
        return cls(
            point_ops=100,
            point_rounds=2,
            backfill_rows=2000,
            hit_passes=5,
            concurrent_bursts=1,
            concurrent_rounds=2,
            batch_sizes=(100, 1000, 2000),
            batch_rounds=(3, 3, 1),
            query_sizes=(1000, 2000, 5000),
            query_rounds=(3, 2, 1),
            projection_items=20,
            storm_items=1000,
            storm_rounds=1,
            cache_keys=1000,
            cache_gets=300,
            cache_rounds=1,
            stream_items=5000,
            change_records=2000,
            change_rounds=2,
            eviction_writes=20,
            profile_rounds=3,
        )

    @classmethod
    def tiny(cls) -> Scale:
        """Smaller still: what the test suite's smoke test runs."""
        return cls(
            point_ops=20,
            point_rounds=1,
            hit_passes=1,
            concurrent_gets=20,
            concurrent_bursts=1,
            concurrent_rounds=1,
            batch_sizes=(10, 100, 200),
            batch_rounds=(1, 1, 1),
            query_sizes=(50, 100, 200),
            query_rounds=(1, 1, 1),
            projection_items=5,
            storm_items=100,
            storm_rounds=1,
            cache_keys=100,
            cache_gets=50,
            cache_rounds=1,
            stream_items=200,
            change_records=200,
            change_rounds=1,
            eviction_writes=5,
            profile_users=2,
            profile_rounds=1,
        )


@dataclass
class Bench:
    """The engine's URL (dynalite, no proxy), the scale, and the seeded users' ids."""

    engine_url: str
    scale: Scale
    user_ids: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    _partitions: dict[int, str] = field(default_factory=dict, repr=False)

    def prepare(self) -> None:
        """Create the tables and write the 1,000 users the point and batch reads start with."""
        use_layer(self.engine_url)
        for model in (User, UserProgress):
            create_table(model)
        self.user_ids = []
        self.users(USER_COUNT)

    def users(self, n: int) -> list[str]:
        """The ids of ``n`` seeded users (written now if fewer exist), in a shuffled order.

        Writes straight to the engine: call it before pointing the layer at a proxy.
        """
        have = len(self.user_ids)
        if n > have:
            use_layer(self.engine_url)
            users = [
                User(user_id=f"u-{i:05d}", email=f"user{i}@example.com", name=f"User {i}")
                for i in range(have, n)
            ]
            UserRepository(cache=None, metrics=Metrics()).batch_save(users)
            ids = [u.user_id for u in users]
            random.Random(42 + have).shuffle(ids)  # read in an order unrelated to the writes
            self.user_ids.extend(ids)
        return self.user_ids[:n]

    def partition(self, n: int) -> str:
        """The user id of a ``UserProgress`` partition of ``n`` items (written once, directly).

        The items are what the layer writes (one ``UserProgress`` serialised, its key,
        score and attempts varied), sent by the minimal client on a few threads: seeding
        50,000 items should not take longer than reading them.
        """
        if n not in self._partitions:
            user_id = f"part-{n}"
            template = UserProgress(user_id=user_id, lesson_id="-", score=0).serialize()
            puts = [
                {
                    "PutRequest": {
                        "Item": {
                            **template,
                            "lessonId": {"S": f"lesson-{i:06d}"},
                            "score": {"N": str(i % 100)},
                            "attempts": {"N": str(i % 7)},
                        }
                    }
                }
                for i in range(n)
            ]
            chunks = [puts[i : i + BATCH_WRITE_MAX] for i in range(0, n, BATCH_WRITE_MAX)]
            table = PROGRESS_TABLE
            client = MinimalClient(self.engine_url, pool=SEED_THREADS)

            def write(chunk: list[dict[str, Any]]) -> None:
                request: dict[str, Any] = {table: chunk}
                while request:
                    answer = client.call("BatchWriteItem", {"RequestItems": request})
                    request = answer.get("UnprocessedItems") or {}

            with ThreadPoolExecutor(max_workers=SEED_THREADS) as pool:
                list(pool.map(write, chunks))
            client.close()
            self._partitions[n] = user_id
        return self._partitions[n]
