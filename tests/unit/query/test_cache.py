"""The result cache reuses an answer only while no commit happened and within its TTL."""

from __future__ import annotations

from sightline.query.cache import ResultCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_commit_or_the_ttl_ends_an_answer() -> None:
    version = [0]
    clock = Clock()
    cache = ResultCache(lambda: version[0], clock=clock)
    calls = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert cache.get_or_compute("k", 5.0, compute) == 1
    assert cache.get_or_compute("k", 5.0, compute) == 1  # same data, fresh enough
    version[0] += 1  # the writer committed
    assert cache.get_or_compute("k", 5.0, compute) == 2
    clock.now += 4.9
    assert cache.get_or_compute("k", 5.0, compute) == 2
    clock.now += 0.2  # older than the promise, even without a commit
    assert cache.get_or_compute("k", 5.0, compute) == 3
    assert cache.get_or_compute("k", 0.0, compute) == 4  # a zero TTL never reuses
    assert (cache.hits, cache.misses) == (2, 4)


def test_the_version_is_read_before_computing() -> None:
    version = [0]
    cache = ResultCache(lambda: version[0], clock=Clock())

    def compute_during_a_commit() -> str:
        version[0] += 1  # a commit lands while the answer is computed
        return "maybe without the commit"

    cache.get_or_compute("k", 5.0, compute_during_a_commit)
    # The stored answer is tagged with the version read before: it is not reused.
    assert cache.get_or_compute("k", 5.0, lambda: "fresh") == "fresh"


def test_entries_are_bounded() -> None:
    cache = ResultCache(lambda: 0, max_entries=3, clock=Clock())
    for key in range(10):
        cache.get_or_compute(key, 5.0, lambda key=key: key)
    assert len(cache._entries) == 3
    assert cache.get_or_compute(9, 5.0, lambda: -1) == 9
    assert cache.get_or_compute(0, 5.0, lambda: -1) == -1
