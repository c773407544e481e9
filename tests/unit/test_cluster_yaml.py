"""Check cluster.yaml with Ray's own cluster-launcher code, without any cloud or Ray.

``ray up`` fills a config out with the provider's defaults (``prepare_config``) and
checks it against Ray's ``ray-schema.json`` (``validate_config``) before it talks to
the cloud; these tests run those same two steps, and nothing after them.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

CLUSTER_YAML = Path(__file__).resolve().parents[2] / "cluster.yaml"

GIB = 2**30
# RAM of the instance types cluster.yaml uses. On Ubuntu /dev/shm is half the RAM,
# and an object store larger than /dev/shm falls back to a much slower /tmp.
INSTANCE_RAM = {"m5.2xlarge": 32 * GIB, "r5.2xlarge": 64 * GIB}

OBJECT_STORE = re.compile(r"--object-store-memory[= ](\d+)")


def load() -> dict[str, Any]:
    config = yaml.safe_load(CLUSTER_YAML.read_text())
    assert isinstance(config, dict)
    return config


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return load()


@pytest.fixture(scope="module")
def prepared() -> dict[str, Any]:
    return prepare_config(load())


def object_store_bytes(commands: list[str]) -> int:
    sizes = [int(size) for command in commands for size in OBJECT_STORE.findall(command)]
    assert len(sizes) == 1, f"expected one --object-store-memory in {commands}"
    return sizes[0]


def test_file_as_written_passes_the_schema(raw: dict[str, Any]) -> None:
    validate_config(raw)


def test_config_as_ray_up_prepares_it_passes_the_validator(prepared: dict[str, Any]) -> None:
    validate_config(prepared)


def test_defaults_to_aws(raw: dict[str, Any]) -> None:
    assert raw["provider"]["type"] == "aws"
    assert raw["provider"]["region"]
    assert not raw["docker"], "docker is off by default"


def test_head_node_type_exists(prepared: dict[str, Any]) -> None:
    assert prepared["head_node_type"] in prepared["available_node_types"]
    head = prepared["available_node_types"][prepared["head_node_type"]]
    assert head["max_workers"] == 0


def test_worker_counts_are_consistent(raw: dict[str, Any], prepared: dict[str, Any]) -> None:
    node_types = prepared["available_node_types"]
    for name, node_type in node_types.items():
        assert 0 <= node_type["min_workers"] <= node_type["max_workers"], name
        assert node_type["max_workers"] <= prepared["max_workers"], name
    assert sum(t["min_workers"] for t in node_types.values()) <= prepared["max_workers"]
    # The cache spans the workers that are up when it is created: keep some.
    workers = [t for n, t in raw["available_node_types"].items() if n != raw["head_node_type"]]
    assert workers
    assert all(t["min_workers"] >= 1 for t in workers)


def test_every_node_installs_raycache(prepared: dict[str, Any]) -> None:
    # prepare_config merges setup_commands into the head's and the workers' lists.
    for key in ("head_setup_commands", "worker_setup_commands"):
        installs = [c for c in prepared[key] if re.search(r"pip install .*\braycache\b", c)]
        assert installs, f"{key} does not install raycache"


def test_start_commands_size_the_object_store(prepared: dict[str, Any]) -> None:
    head = " ".join(prepared["head_start_ray_commands"])
    assert "ray start --head" in head
    assert "--port=6379" in head
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in head
    worker = " ".join(prepared["worker_start_ray_commands"])
    assert "--address=$RAY_HEAD_IP:6379" in worker

    node_types = prepared["available_node_types"]
    head_type = prepared["head_node_type"]
    for name, node_type in node_types.items():
        key = "head_start_ray_commands" if name == head_type else "worker_start_ray_commands"
        size = object_store_bytes(prepared[key])
        ram = INSTANCE_RAM[node_type["node_config"]["InstanceType"]]
        # Bigger than nothing, at most what /dev/shm holds.
        assert GIB <= size <= ram // 2, name


@pytest.mark.parametrize(
    ("break_it", "error", "match"),
    [
        pytest.param(
            lambda c: c.update(max_workers="many"),
            jsonschema.ValidationError,
            "'many' is not of type 'integer'",
            id="max_workers-not-int",
        ),
        pytest.param(
            lambda c: c.pop("provider"),
            jsonschema.ValidationError,
            "'provider' is a required property",
            id="no-provider",
        ),
        pytest.param(
            lambda c: c.update(no_such_field=1),
            jsonschema.ValidationError,
            "Additional properties are not allowed",
            id="unknown-field",
        ),
        pytest.param(
            lambda c: c["available_node_types"]["ray.worker.cache"].update(min_workers="2"),
            jsonschema.ValidationError,
            "'2' is not of type 'integer'",
            id="min_workers-str",
        ),
        pytest.param(
            lambda c: c.update(head_node_type="ray.head.missing"),
            ValueError,
            "must be one of `available_node_types`",
            id="unknown-head-type",
        ),
        pytest.param(
            lambda c: c.update(max_workers=1),
            ValueError,
            "smaller than the sum of `min_workers`",
            id="max-below-sum-of-min",
        ),
    ],
)
def test_broken_copies_fail_validation(
    prepared: dict[str, Any], break_it: Any, error: type[Exception], match: str
) -> None:
    broken = copy.deepcopy(prepared)
    break_it(broken)
    with pytest.raises(error, match=re.escape(match)):
        validate_config(broken)


def test_on_premise_alternative_validates(raw: dict[str, Any]) -> None:
    # What the commented `local` block says to do: swap the provider and auth, and
    # drop the node types; Ray then builds its one node type from the IPs.
    config = copy.deepcopy(raw)
    config["provider"] = {
        "type": "local",
        "head_ip": "10.0.0.10",
        "worker_ips": ["10.0.0.11", "10.0.0.12", "10.0.0.13"],
    }
    config["auth"] = {"ssh_user": "ubuntu", "ssh_private_key": "~/.ssh/id_rsa"}
    del config["available_node_types"], config["head_node_type"]
    config["head_setup_commands"] = []  # boto3 is for the AWS autoscaler only
    validated = prepare_config(config)
    validate_config(validated)
    assert validated["head_node_type"] in validated["available_node_types"]
