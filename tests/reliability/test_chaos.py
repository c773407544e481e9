"""The cache under faults: killed shards, a lost node, a killed driver.

Every answer a client gets is checked against the key's only possible value; no client
may see an exception (but one a lost node's references may raise, as documented), and
the cache must recover by itself.
"""

from __future__ import annotations

import json
import time

import pytest
import ray

import raycache
from raycache.actors.cluster import NAMESPACE, shard_actor_name, shard_id
from tests.cluster.test_placement import run_on_cluster
from tests.helpers.chaos import (
    RECOVERY_OPERATIONS,
    Outcome,
    driver_killed,
    resizes,
    router_kills,
    shard_kills,
)


def assert_clean(outcome: Outcome) -> None:
    assert outcome.tally.exceptions == []
    assert outcome.tally.wrong == []


def test_broadcasts_reach_a_shard_replaced_behind_a_stale_handle(
    fresh_cache: raycache.Cache,
) -> None:
    name = fresh_cache.name
    for index in range(fresh_cache.config.shards):
        shard = ray.get_actor(shard_actor_name(name, shard_id(index)), namespace=NAMESPACE)
        ray.kill(shard, no_restart=True)  # gone for good: the router starts a replacement
    deadline = time.monotonic() + 60
    while len(raycache.Cache.attach(name).stats()["shards"]) < 2:
        assert time.monotonic() < deadline, "shards were not replaced"
        time.sleep(0.2)
    current = raycache.Cache.attach(name)
    current.put_many({key: key for key in range(50)})
    # fresh_cache still holds the ring that routes to the dead shards.
    assert len(fresh_cache.stats()["shards"]) == 2
    fresh_cache.clear()
    assert current.get_many(range(50)) == {}


@pytest.mark.timeout(420)
def test_no_exception_and_no_wrong_value_while_shards_are_killed(
    fresh_cache: raycache.Cache,
) -> None:
    outcome = shard_kills(fresh_cache)
    print(outcome)
    assert_clean(outcome)
    assert outcome.tally.operations == 10_000 + RECOVERY_OPERATIONS
    assert outcome.faults >= 5
    assert outcome.hit_ratio_under_faults is not None and outcome.hit_ratio_after is not None
    assert outcome.hit_ratio_after >= 0.9
    assert outcome.hit_ratio_after > outcome.hit_ratio_under_faults


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_waiters_get_the_value_when_the_driver_that_started_it_is_killed(
    fresh_cache: raycache.Cache,
) -> None:
    outcome = driver_killed(fresh_cache)
    assert_clean(outcome)
    assert outcome.tally.operations == 2


OWNER_LOST = "_memoized_remote_call: OwnerDiedError"

NODE_LOSS = """
import json
from dataclasses import asdict
from tests.helpers.chaos import node_losses

cache = raycache.Cache("chaos-nodes", capacity="90MiB")
node = {"num_cpus": 1, "object_store_memory": 200 * 2**20}
outcome = node_losses(cache, cluster, operations=7_500, **node)  # room for two swaps
print(json.dumps(asdict(outcome)))
cache.shutdown()
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_no_exception_and_no_wrong_value_while_nodes_are_lost() -> None:
    outcome = json.loads(run_on_cluster(NODE_LOSS)[-1])
    print(outcome)
    assert outcome["faults"] >= 2
    assert outcome["tally"]["wrong"] == []
    # The one exception a lost node may cause, as docs/reliability.md says: a memoized
    # .remote() hands out a reference that the vault of its shard's node owns, and that
    # node lost before the caller's own ray.get is done takes the object with it. Each
    # of the 4 clients holds one such reference at a time.
    exceptions = outcome["tally"]["exceptions"]
    owner_lost = [e for e in exceptions if e.startswith(OWNER_LOST)]
    assert [e for e in exceptions if e not in owner_lost] == []
    assert len(owner_lost) <= 4 * outcome["faults"]
    assert outcome["hit_ratio_after"] >= 0.8


@pytest.mark.timeout(420)
def test_no_exception_and_no_wrong_value_while_the_router_is_killed(
    fresh_cache: raycache.Cache,
) -> None:
    outcome = router_kills(fresh_cache, operations=4_000)
    print(outcome)
    assert_clean(outcome)
    assert outcome.faults >= 2
    assert outcome.hit_ratio_after is not None and outcome.hit_ratio_after >= 0.9


@pytest.mark.timeout(420)
def test_no_exception_and_no_wrong_value_while_resizing(fresh_cache: raycache.Cache) -> None:
    outcome = resizes(fresh_cache, operations=4_000)
    print(outcome)
    assert_clean(outcome)
    assert outcome.faults >= 2
    assert outcome.hit_ratio_after is not None and outcome.hit_ratio_after >= 0.9
