"""One pooled client: bounded connections, keep-alive, clean reconfiguration."""

from __future__ import annotations

import threading

from portchops_models import User, UserRepository
from portchops_models.settings import Settings, configure
from portchops_models.testing.engine import LocalEngine
from portchops_models.testing.faultproxy import FaultProxy, Faults
from portchops_models.transport.connection import current_connection


def test_concurrent_reads_never_open_more_connections_than_the_pool(
    tables: Settings, moto_engine: LocalEngine
) -> None:
    UserRepository().batch_save(
        User(user_id=f"u{i}", email=f"{i}@example.com", name="N") for i in range(20)
    )
    with FaultProxy(upstream=moto_engine.endpoint_url, faults=Faults(latency=0.01)) as proxy:
        configure(tables, endpoint_url=proxy.endpoint_url, max_pool_connections=4)
        repo = UserRepository(cache=None)
        barrier = threading.Barrier(16)

        def reader(n: int) -> None:
            barrier.wait()
            for i in range(10):
                assert User.get(f"u{(n + i) % 20}").name == "N"  # the model path
                assert repo.get(f"u{(n * i) % 20}").name == "N"  # the repository path

        threads = [threading.Thread(target=reader, args=(n,)) for n in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats = proxy.stats
    assert stats.requests == 16 * 10 * 2
    assert stats.peak_connections <= 4
    assert stats.connections_opened <= 4  # kept alive and reused, not reopened
    assert stats.peak_connections >= 2  # the threads really did overlap


def test_models_and_repositories_share_one_client(tables: Settings) -> None:
    conn = current_connection()
    User(user_id="u1", email="a@example.com", name="Ada").save()
    shared = User._get_connection().connection.client
    assert shared.connection is conn  # type: ignore[attr-defined]
    assert shared.meta is conn.client.meta  # everything else is the shared client itself
    UserRepository().get("u1")
    assert current_connection() is conn


def test_configure_again_rebinds_everything_and_closes_the_old_client(
    tables: Settings, moto_engine: LocalEngine
) -> None:
    User(user_id="u1", email="a@example.com", name="Old table").save()
    old = current_connection()
    repo = UserRepository()
    assert repo.get("u1").name == "Old table"
    other = configure(endpoint_url=moto_engine.endpoint_url, table_prefix=tables.table_prefix)
    new = current_connection()
    assert new is not old
    assert new.settings is other
    assert User._get_connection().connection.client.connection is new  # type: ignore[attr-defined]
    assert old.executor._shutdown  # the old pool's threads are released
    assert repo.get("u1").name == "Old table"  # same tables, new client
    configure(endpoint_url=moto_engine.endpoint_url, table_prefix="elsewhere-")
    assert User.table_name() == "elsewhere-users"
