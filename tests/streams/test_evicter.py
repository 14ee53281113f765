"""The evicter on moto's Streams API and a real Redis: writes from outside the layer evict
process B's cache."""

from __future__ import annotations

import threading
import time
from typing import Any

import botocore.session
import pytest

from portchops_models import ConfigurationError, User, UserRepository, configure
from portchops_models.settings import Settings
from portchops_models.streams import enable_stream, evicter
from tests.bus_agent import WAIT, Agent

pytestmark = pytest.mark.timeout(120)


def _raw_rename(settings: Settings, user_id: str, name: str) -> None:
    """A write from outside the layer: botocore's own client, no bus, no markers."""
    client: Any = botocore.session.get_session().create_client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=settings.endpoint_url,
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    client.update_item(
        TableName=User.table_name(),
        Key={"userId": {"S": user_id}},
        UpdateExpression="SET #n = :n",
        ExpressionAttributeNames={"#n": "name"},
        ExpressionAttributeValues={":n": {"S": name}},
    )


def test_a_raw_write_elsewhere_reaches_process_b_through_the_evicter(
    bus_tables: Settings, agent: Agent, capsys: pytest.CaptureFixture[str]
) -> None:
    enable_stream(User)
    UserRepository().save(User(user_id="u1", email="u1@example.com", name="Ada"))
    assert agent.ask("read", "u1") == {"name": "Ada", "hit": False}
    assert agent.ask("read", "u1") == {"name": "Ada", "hit": True}
    _raw_rename(bus_tables, "u1", "Grace")
    assert agent.ask("read", "u1") == {"name": "Ada", "hit": True}  # the hole: stale
    agent.ask("watch", "u1")
    result = evicter(User).run(until_idle=True)  # returns once the bus took the keys
    assert result.records >= 2
    assert agent.ask("evicted", WAIT)["at"] is not None
    assert agent.ask("read", "u1") == {"name": "Grace", "hit": False}

    # a running evicter: B's item is fresh shortly after each raw write
    running = evicter(User, poll_seconds=0.02)
    thread = threading.Thread(target=running.run)
    thread.start()
    try:
        latencies = []
        for n in range(5):
            assert agent.ask("read", "u1")["name"] is not None  # cached again
            agent.ask("watch", "u1")
            written = time.time()
            _raw_rename(bus_tables, "u1", f"v{n}")
            evicted = agent.ask("evicted", WAIT)["at"]
            assert evicted is not None
            latencies.append(evicted - written)
            assert agent.ask("read", "u1") == {"name": f"v{n}", "hit": False}
    finally:
        running.stop()
        thread.join(timeout=WAIT)
    assert not thread.is_alive()
    with capsys.disabled():
        median = sorted(latencies)[2] * 1000
        print(f"\nevicter: raw write to eviction in process B, median {median:.0f} ms")


def test_the_evicter_needs_a_bus(tables: Settings) -> None:
    configure(tables, cache_bus_url=None)
    with pytest.raises(ConfigurationError, match="PORTCHOPS_CACHE_BUS_URL"):
        evicter(User)
