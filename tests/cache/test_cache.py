"""Tests for portchops_models.cache: counting, expiry, eviction, stampedes, stale writes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portchops_models.cache import CacheInfo, CachePolicy, ItemCache, cached

# Safety net only: a broken implementation fails instead of hanging. Nothing asserts on time.
JOIN_TIMEOUT = 30.0


class FakeTimer:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class CountingLoader:
    """A loader returning a fixed value and counting its calls (thread-safe)."""

    value: str | None
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self) -> str | None:
        with self.lock:
            self.calls += 1
        return self.value


class Arrivals:
    """A variant equal to every other `Arrivals` of the same name, counting comparisons.

    A caller that finds a load of an equal (but distinct) variant in flight compares its
    variant with the in-flight one while holding the cache's lock, just before it waits;
    so once `arrived` is set, that many callers are waiting (or about to wait, lock held).
    """

    def __init__(self, name: str, counter: ArrivalCounter) -> None:
        self.name = name
        self.counter = counter

    def __hash__(self) -> int:
        return hash(self.name)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Arrivals):
            return NotImplemented
        if other is not self:
            self.counter.arrive()
        return self.name == other.name


class ArrivalCounter:
    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.lock = threading.Lock()
        self.arrived = threading.Event()

    def arrive(self) -> None:
        with self.lock:
            self.count += 1
            if self.count >= self.expected:
                self.arrived.set()


def make_cache(timer: FakeTimer | None = None, **policy: float | None) -> ItemCache[str, str]:
    return ItemCache(CachePolicy(timer=timer or FakeTimer(), **policy))  # type: ignore[arg-type]


def run_threads(targets: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"


# -- policy -------------------------------------------------------------------------------


def test_policy_defaults() -> None:
    policy = CachePolicy()
    assert (policy.maxsize, policy.ttl, policy.negative_ttl) == (500, 300.0, None)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"maxsize": 0},
        {"maxsize": -1},
        {"maxsize": True},
        {"ttl": 0.0},
        {"ttl": -1.0},
        {"ttl": float("nan")},
        {"negative_ttl": 0.0},
        {"ttl": 10.0, "negative_ttl": 11.0},
    ],
)
def test_policy_rejects_bad_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        CachePolicy(**kwargs)  # type: ignore[arg-type]


def test_policy_is_frozen() -> None:
    with pytest.raises(AttributeError):
        CachePolicy().ttl = 1.0  # type: ignore[misc]


# -- single-item reads ----------------------------------------------------------------------


def test_hits_and_misses_are_counted() -> None:
    events: list[tuple[bool, int]] = []
    cache: ItemCache[str, str] = ItemCache(
        CachePolicy(timer=FakeTimer()), on_event=lambda hit, n: events.append((hit, n))
    )
    loader = CountingLoader("v")

    assert cache.get_or_load("k", None, loader) == "v"
    assert cache.get_or_load("k", None, loader) == "v"
    assert cache.get_or_load("k", None, loader) == "v"

    assert loader.calls == 1
    assert (cache.hits, cache.misses) == (2, 1)
    assert cache.info() == CacheInfo(hits=2, misses=1, maxsize=500, currsize=1)
    assert events == [(False, 1), (True, 1), (True, 1)]
    assert len(cache) == 1


def test_clear_drops_entries_and_resets_counters() -> None:
    cache = make_cache()
    cache.get_or_load("k", None, CountingLoader("v"))
    cache.clear()
    assert cache.info() == CacheInfo(hits=0, misses=0, maxsize=500, currsize=0)
    loader = CountingLoader("w")
    assert cache.get_or_load("k", None, loader) == "w"
    assert loader.calls == 1


def test_entries_expire_after_ttl() -> None:
    timer = FakeTimer()
    cache = make_cache(timer, ttl=10.0)
    loader = CountingLoader("v")

    cache.get_or_load("k", None, loader)
    timer.advance(9.999)
    cache.get_or_load("k", None, loader)
    assert loader.calls == 1

    timer.advance(0.001)
    assert len(cache) == 0
    cache.get_or_load("k", None, loader)
    assert loader.calls == 2
    assert (cache.hits, cache.misses) == (1, 2)


def test_least_recently_used_entry_is_evicted_at_maxsize() -> None:
    cache = make_cache(maxsize=2)
    cache.get_or_load("a", None, CountingLoader("A"))
    cache.get_or_load("b", None, CountingLoader("B"))
    cache.get_or_load("a", None, CountingLoader("unused"))  # touch a: b is now the oldest
    cache.get_or_load("c", None, CountingLoader("C"))

    assert len(cache) == 2
    found, missing = cache.get_many(["a", "b", "c"], None)
    assert found == {"a": "A", "c": "C"}
    assert missing == ["b"]


def test_variants_are_cached_separately() -> None:
    cache = make_cache()
    full, summary = CountingLoader("full"), CountingLoader("summary")

    assert cache.get_or_load("k", None, full) == "full"
    assert cache.get_or_load("k", "Summary", summary) == "summary"
    assert cache.get_or_load("k", None, full) == "full"
    assert cache.get_or_load("k", "Summary", summary) == "summary"

    assert (full.calls, summary.calls) == (1, 1)
    assert len(cache) == 2


def test_invalidate_drops_every_variant_of_the_keys_only() -> None:
    cache = make_cache()
    for variant in (None, "Summary", "Other"):
        cache.get_or_load("k", variant, CountingLoader(f"k-{variant}"))
    cache.get_or_load("j", None, CountingLoader("j"))

    cache.invalidate(["k", "never-cached"])

    assert len(cache) == 1
    for variant in (None, "Summary", "Other"):
        assert cache.get_many(["k"], variant) == ({}, ["k"])
    assert cache.get_many(["j"], None) == ({"j": "j"}, [])


# -- "not found" ----------------------------------------------------------------------------


def test_not_found_is_not_cached_by_default() -> None:
    cache = make_cache()
    loader = CountingLoader(None)
    assert cache.get_or_load("k", None, loader) is None
    assert cache.get_or_load("k", None, loader) is None
    assert loader.calls == 2
    assert len(cache) == 0
    assert cache.get_many(["k"], None) == ({}, ["k"])


def test_not_found_is_cached_for_negative_ttl() -> None:
    timer = FakeTimer()
    cache = make_cache(timer, ttl=100.0, negative_ttl=5.0)
    loader = CountingLoader(None)

    assert cache.get_or_load("k", None, loader) is None
    assert cache.get_or_load("k", None, loader) is None
    assert loader.calls == 1
    assert cache.get_many(["k"], None) == ({"k": None}, [])

    timer.advance(5.0)
    assert cache.get_many(["k"], None) == ({}, ["k"])
    assert cache.get_or_load("k", None, loader) is None
    assert loader.calls == 2


def test_put_many_missing_follows_the_negative_policy() -> None:
    negative = make_cache(negative_ttl=5.0)
    negative.put_many({"a": "A"}, None, missing=["b"])
    assert negative.get_many(["a", "b", "c"], None) == ({"a": "A", "b": None}, ["c"])

    plain = make_cache()
    plain.put_many({"b": "stale"}, None)
    plain.put_many({"a": "A"}, None, missing=["b"])  # b no longer exists: drop the stale entry
    assert plain.get_many(["a", "b"], None) == ({"a": "A"}, ["b"])


# -- batches ----------------------------------------------------------------------------------


def test_get_many_keeps_order_and_counts_partial_hits() -> None:
    events: list[tuple[bool, int]] = []
    cache: ItemCache[str, str] = ItemCache(
        CachePolicy(timer=FakeTimer()), on_event=lambda hit, n: events.append((hit, n))
    )
    cache.put_many({"d": "D", "b": "B"}, None)
    cache.put_many({"a": "a-summary"}, "Summary")

    found, missing = cache.get_many(["e", "d", "a", "b", "c", "d"], None)

    assert list(found.items()) == [("d", "D"), ("b", "B")]
    assert missing == ["e", "a", "c"]
    assert (cache.hits, cache.misses) == (2, 3)
    assert events == [(True, 2), (False, 3)]


def test_batch_load_round_trip() -> None:
    cache = make_cache(negative_ttl=5.0)
    cache.put_many({"b": "B"}, None)
    found, missing = cache.get_many(["a", "b", "c"], None)
    assert (found, missing) == ({"b": "B"}, ["a", "c"])

    with cache.begin(missing) as token:
        assert token.keys == frozenset({"a", "c"})
        fetched = {"a": "A"}
        cache.put_many(fetched, None, missing=[k for k in missing if k not in fetched], token=token)
        assert token.closed

    assert cache.get_many(["a", "b", "c"], None) == ({"a": "A", "b": "B", "c": None}, [])


def test_put_many_skips_keys_invalidated_after_begin() -> None:
    cache = make_cache(negative_ttl=5.0)
    token = cache.begin(["a", "b", "c"])
    cache.invalidate(["a", "c"])  # a write happened while the batch was being fetched
    cache.put_many({"a": "old-A", "b": "B"}, None, missing=["c"], token=token)

    assert token.closed
    assert cache.get_many(["a", "b", "c"], None) == ({"b": "B"}, ["a", "c"])


def test_put_many_skips_everything_after_clear() -> None:
    cache = make_cache()
    with cache.begin(["a"]) as token:
        cache.clear()
        cache.put_many({"a": "old"}, None, token=token)
    assert len(cache) == 0


def test_put_many_rejects_bad_tokens_and_arguments() -> None:
    cache, other = make_cache(), make_cache()

    with cache.begin(["a"]) as token:
        with pytest.raises(ValueError, match="not covered"):
            cache.put_many({"b": "B"}, None, token=token)
        with pytest.raises(ValueError, match="another cache"):
            other.put_many({"a": "A"}, None, token=token)
        cache.put_many({"a": "A"}, None, token=token)
        with pytest.raises(ValueError, match="already used"):
            cache.put_many({"a": "A"}, None, token=token)

    with pytest.raises(ValueError, match="both found and missing"):
        cache.put_many({"a": "A"}, None, missing=["a"])


def test_unused_token_is_released_by_with() -> None:
    cache = make_cache()
    with pytest.raises(RuntimeError), cache.begin(["a"]) as token:
        raise RuntimeError("the fetch failed")
    assert token.closed
    token.close()  # idempotent
    assert cache._inflight == {}


def test_generation_bookkeeping_is_bounded() -> None:
    cache = make_cache(maxsize=3)
    for i in range(50):
        key = f"k{i}"
        cache.get_or_load(key, None, CountingLoader(key))
        with cache.begin([key, "shared"]) as token:
            cache.invalidate([key])
            cache.put_many({key: "x"}, None, token=token)
    assert cache._inflight == {}
    assert cache._loads == {}
    assert len(cache._store.variants) == len(cache) <= 3


# -- concurrency ------------------------------------------------------------------------------


def test_stampede_on_a_cold_key_runs_one_loader() -> None:
    threads = 100
    cache = make_cache()
    counter = ArrivalCounter(expected=threads - 1)
    calls: list[str] = []
    results: list[str | None] = []
    start = threading.Barrier(threads)

    def loader() -> str:
        calls.append("load")
        # Block until every other thread is waiting for this very load.
        assert counter.arrived.wait(JOIN_TIMEOUT), "the other threads never joined the load"
        return "value"

    def reader() -> None:
        variant = Arrivals("v", counter)  # equal for all threads, but distinct objects
        start.wait()
        results.append(cache.get_or_load("k", variant, loader))

    run_threads([reader] * threads)

    assert calls == ["load"]
    assert results == ["value"] * threads
    assert (cache.hits, cache.misses) == (threads - 1, 1)


def test_a_failing_loader_does_not_hang_waiters_and_caches_nothing() -> None:
    threads = 10
    cache = make_cache()
    counter = ArrivalCounter(expected=threads - 1)
    calls: list[int] = []
    errors: list[Exception] = []
    start = threading.Barrier(threads)

    def loader() -> str:
        calls.append(1)
        if len(calls) == 1:
            assert counter.arrived.wait(JOIN_TIMEOUT), "the other threads never joined the load"
        raise RuntimeError("table unavailable")

    def reader() -> None:
        variant = Arrivals("v", counter)
        start.wait()
        try:
            cache.get_or_load("k", variant, loader)
        except RuntimeError as err:
            errors.append(err)

    run_threads([reader] * threads)

    # Waiters retry: each thread ends up running the loader itself, one at a time.
    assert len(calls) == threads
    assert len(errors) == threads
    assert len(cache) == 0


def test_waiters_retry_after_a_failed_load() -> None:
    threads = 10
    cache = make_cache()
    counter = ArrivalCounter(expected=threads - 1)
    calls: list[int] = []
    outcomes: list[str] = []
    start = threading.Barrier(threads)

    def loader() -> str:
        calls.append(1)
        if len(calls) == 1:
            assert counter.arrived.wait(JOIN_TIMEOUT), "the other threads never joined the load"
            raise RuntimeError("throttled")
        return "value"

    def reader() -> None:
        variant = Arrivals("v", counter)
        start.wait()
        try:
            outcomes.append(str(cache.get_or_load("k", variant, loader)))
        except RuntimeError:
            outcomes.append("error")

    run_threads([reader] * threads)

    assert len(calls) == 2  # the failed load, then one retry shared by the rest
    assert sorted(outcomes) == ["error"] + ["value"] * (threads - 1)
    assert cache.get_many(["k"], Arrivals("v", ArrivalCounter(0))) == ({"k": "value"}, [])


def test_a_load_started_before_invalidate_does_not_store_its_result() -> None:
    cache = make_cache()
    started, proceed = threading.Event(), threading.Event()
    results: list[str | None] = []

    def old_loader() -> str:
        started.set()
        assert proceed.wait(JOIN_TIMEOUT)
        return "old"

    reader = threading.Thread(
        target=lambda: results.append(cache.get_or_load("k", None, old_loader))
    )
    reader.start()
    assert started.wait(JOIN_TIMEOUT)

    cache.invalidate(["k"])  # thread B wrote "new" and invalidated
    # A later reader does not join the stale load: it loads (and caches) the new value.
    assert cache.get_or_load("k", None, CountingLoader("new")) == "new"

    proceed.set()
    reader.join(JOIN_TIMEOUT)
    assert not reader.is_alive()

    assert results == ["old"]  # its own caller still gets what it read
    assert cache.get_many(["k"], None) == ({"k": "new"}, [])


def test_a_stale_load_does_not_fill_an_invalidated_key() -> None:
    cache = make_cache()
    started, proceed = threading.Event(), threading.Event()

    def old_loader() -> str:
        started.set()
        assert proceed.wait(JOIN_TIMEOUT)
        return "old"

    reader = threading.Thread(target=lambda: cache.get_or_load("k", None, old_loader))
    reader.start()
    assert started.wait(JOIN_TIMEOUT)
    cache.invalidate(["k"])
    proceed.set()
    reader.join(JOIN_TIMEOUT)
    assert not reader.is_alive()

    assert len(cache) == 0
    loader = CountingLoader("new")
    assert cache.get_or_load("k", None, loader) == "new"
    assert loader.calls == 1


def test_put_without_token_wins_over_a_load_in_flight() -> None:
    cache = make_cache()
    started, proceed = threading.Event(), threading.Event()

    def old_loader() -> str:
        started.set()
        assert proceed.wait(JOIN_TIMEOUT)
        return "old"

    reader = threading.Thread(target=lambda: cache.get_or_load("k", None, old_loader))
    reader.start()
    assert started.wait(JOIN_TIMEOUT)
    cache.put_many({"k": "new"}, None)  # e.g. the item that was just written
    proceed.set()
    reader.join(JOIN_TIMEOUT)
    assert not reader.is_alive()

    assert cache.get_many(["k"], None) == ({"k": "new"}, [])


def test_batch_and_single_loads_share_stale_write_protection() -> None:
    cache = make_cache()
    token = cache.begin(["k"])
    cache.get_or_load("k", None, CountingLoader("fresh"))  # finished load, not invalidated
    cache.invalidate(["k"])
    cache.put_many({"k": "old"}, None, token=token)
    assert cache.get_many(["k"], None) == ({}, ["k"])


# -- the decorator ----------------------------------------------------------------------------


def test_cached_decorator_reads_through_the_cache_and_bypasses_on_none() -> None:
    cache = make_cache()
    calls: list[tuple[str, bool]] = []

    def key(user_id: str, *, consistent: bool = False) -> tuple[str, Hashable] | None:
        return None if consistent else (user_id, "User")

    @cached(cache, key=key)
    def find_user(user_id: str, *, consistent: bool = False) -> str | None:
        """Find a user."""
        calls.append((user_id, consistent))
        return None if user_id == "ghost" else f"user:{user_id}"

    assert find_user("u1") == "user:u1"
    assert find_user("u1") == "user:u1"
    assert find_user("u1", consistent=True) == "user:u1"
    assert find_user("u1", consistent=True) == "user:u1"
    assert find_user("ghost") is None

    assert calls == [("u1", False), ("u1", True), ("u1", True), ("ghost", False)]
    assert find_user.cache is cache
    assert find_user.cache_info() == CacheInfo(hits=1, misses=2, maxsize=500, currsize=1)
    assert find_user.__name__ == "find_user"
    assert find_user.__doc__ == "Find a user."
    assert find_user.__wrapped__("u2") == "user:u2"

    cache.invalidate(["u1"])
    assert find_user("u1") == "user:u1"
    assert len(calls) == 6

    find_user.cache_clear()
    assert len(cache) == 0
    assert find_user.cache_info().hits == 0


def test_cached_decorator_shares_entries_with_the_cache() -> None:
    cache = make_cache()
    cache.put_many({"u1": "from-batch"}, "User")

    @cached(cache, key=lambda user_id: (user_id, "User"))
    def find_user(user_id: str) -> str:
        raise AssertionError("should be served from the cache")

    assert find_user("u1") == "from-batch"


# -- model-based ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Put:
    key: str
    variant: str | None
    value: str


@dataclass(frozen=True)
class PutMissing:
    key: str
    variant: str | None


@dataclass(frozen=True)
class Load:
    key: str
    variant: str | None
    value: str


@dataclass(frozen=True)
class GetMany:
    keys: list[str]
    variant: str | None


@dataclass(frozen=True)
class Invalidate:
    keys: list[str]


@dataclass(frozen=True)
class StaleBatch:
    """begin(keys), then a write invalidates `stale`, then put_many with the token."""

    keys: list[str]
    variant: str | None
    value: str
    stale: str


Operation = Put | PutMissing | Load | GetMany | Invalidate | StaleBatch

KEYS = st.sampled_from(["a", "b", "c", "d"])
KEY_LISTS = st.lists(KEYS, max_size=4)
VARIANTS = st.sampled_from([None, "Summary"])
VALUES = st.text(max_size=3)
OPERATIONS = st.lists(
    st.one_of(
        st.builds(Put, KEYS, VARIANTS, VALUES),
        st.builds(PutMissing, KEYS, VARIANTS),
        st.builds(Load, KEYS, VARIANTS, VALUES),
        st.builds(GetMany, KEY_LISTS, VARIANTS),
        st.builds(Invalidate, KEY_LISTS),
        st.builds(StaleBatch, KEY_LISTS, VARIANTS, VALUES, KEYS),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(OPERATIONS)
def test_matches_a_dict_model(operations: list[Operation]) -> None:
    cache = make_cache(maxsize=1000)  # the fake clock never moves: nothing expires
    model: dict[tuple[str, str | None], str] = {}
    hits = misses = 0

    for op in operations:
        match op:
            case Put(key, variant, value):
                cache.put_many({key: value}, variant)
                model[(key, variant)] = value
            case PutMissing(key, variant):
                cache.put_many({}, variant, missing=[key])
                model.pop((key, variant), None)
            case Load(key, variant, value):
                if (key, variant) in model:
                    hits += 1
                else:
                    misses += 1
                    model[(key, variant)] = value
                loaded = cache.get_or_load(key, variant, CountingLoader(value))
                assert loaded == model[(key, variant)]
            case GetMany(keys, variant):
                found, missing = cache.get_many(keys, variant)
                distinct = list(dict.fromkeys(keys))
                assert found == {k: model[(k, variant)] for k in distinct if (k, variant) in model}
                assert missing == [k for k in distinct if (k, variant) not in model]
                hits, misses = hits + len(found), misses + len(missing)
            case Invalidate(keys):
                cache.invalidate(keys)
                model = {ck: v for ck, v in model.items() if ck[0] not in keys}
            case StaleBatch(keys, variant, value, stale):
                with cache.begin(keys) as token:
                    cache.invalidate([stale])
                    model = {ck: v for ck, v in model.items() if ck[0] != stale}
                    cache.put_many(dict.fromkeys(keys, value), variant, token=token)
                model.update({(k, variant): value for k in keys if k != stale})

    assert len(cache) == len(model)
    assert (cache.hits, cache.misses) == (hits, misses)
    assert cache._inflight == {}
    assert cache._loads == {}
