"""A Ray cluster with its autoscaler on one machine, from the node types of ``cluster.yaml``.

``ray up`` starts a head node whose ``ray start --head --autoscaling-config=...`` runs the
autoscaler, which then asks the cloud for workers of the configured node types. Here the
cloud is Ray's fake multi-node provider, which starts each "instance" as one more raylet
on this machine: the same autoscaler (v2, as ``RAY_enable_autoscaler_v2=1`` selects), the
same node types, with resources scaled down to fit.

Ray's own ``ray.cluster_utils.AutoscalingCluster`` does the same, but as shipped in Ray
2.60 it fails (provider type ``fake_multinode`` reads an ``example.yaml`` the wheel
lacks), and it starts and stops with ``ray stop --force``, which kills every Ray on the
machine. This one names the fake provider's class as an ``external`` provider, listens on
a port of its own, and stops only the processes of that port.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from ray._private import services

FAKE_PROVIDER = "ray.autoscaler._private.fake_multi_node.node_provider.FakeMultiNodeProvider"
FAKE_HEAD_NODE_ID = "fffffffffffffffffffffffffffffffffffffffffffffffffff00000"
"""The node id the fake provider gives the head (``FAKE_HEAD_NODE_ID`` in Ray)."""

RAY = str(Path(sys.executable).with_name("ray"))


@dataclass(frozen=True)
class Scale:
    """How ``cluster.yaml``'s node types shrink to fit one machine."""

    head_cpus: int = 1
    worker_cpus: int = 2
    object_store_bytes: int = 200 * 2**20
    max_workers: int = 2
    min_workers: int | None = None
    """Workers of each type kept up; None keeps ``cluster.yaml``'s (within ``max_workers``)."""
    idle_timeout_minutes: float = 0.25


def fake_config(cluster: dict[str, Any], gcs_address: str, scale: Scale) -> dict[str, Any]:
    """Return ``cluster`` (a parsed ``cluster.yaml``) for the fake provider, scaled by ``scale``.

    The node types keep their names and their ``min_workers``, capped by ``max_workers``;
    their cloud settings (``node_config``) go, since no cloud is asked for anything.
    """
    head_type = cluster["head_node_type"]
    types = {}
    for name, spec in cluster["available_node_types"].items():
        head = name == head_type
        cpus = scale.head_cpus if head else scale.worker_cpus
        resources = (
            {"CPU": cpus}
            if head
            else {"CPU": cpus, "object_store_memory": scale.object_store_bytes}
        )
        workers = 0 if head else min(spec.get("max_workers", scale.max_workers), scale.max_workers)
        types[name] = {
            "resources": resources,
            "node_config": {},
            "min_workers": 0 if head else min(_least(spec, scale), workers),
            "max_workers": workers,
        }
    provider = {
        "type": "external",
        "module": FAKE_PROVIDER,
        "gcs_address": gcs_address,
        "head_node_id": FAKE_HEAD_NODE_ID,
        "launch_multiple": True,
        "disable_launch_config_check": True,
        "disable_node_updaters": True,
    }
    empty: dict[str, Any] = {key: [] for key in _COMMAND_LISTS}
    return {
        **empty,
        "cluster_name": cluster["cluster_name"],
        "max_workers": scale.max_workers,
        "upscaling_speed": cluster.get("upscaling_speed", 1.0),
        "idle_timeout_minutes": scale.idle_timeout_minutes,
        "docker": {},
        "auth": {"ssh_user": "ubuntu"},
        "provider": provider,
        "available_node_types": types,
        "head_node_type": head_type,
        "file_mounts": {},
        "file_mounts_sync_continuously": False,
    }


def _least(spec: dict[str, Any], scale: Scale) -> int:
    least: int = spec.get("min_workers", 0) if scale.min_workers is None else scale.min_workers
    return least


_COMMAND_LISTS = (
    "initialization_commands",
    "setup_commands",
    "head_setup_commands",
    "worker_setup_commands",
    "head_start_ray_commands",
    "worker_start_ray_commands",
    "cluster_synced_files",
    "rsync_exclude",
    "rsync_filter",
)
"""What ``ray up`` runs or copies over SSH: nothing here, since the nodes are local."""


@dataclass(frozen=True)
class FakeCluster:
    """A running fake cluster: where to reach its GCS and its dashboard."""

    address: str
    dashboard: str | None
    port: int


@contextmanager
def running(
    cluster_yaml: Path, scale: Scale = Scale(), *, dashboard: bool = False
) -> Iterator[FakeCluster]:
    """Start a fake cluster from ``cluster_yaml`` as ``ray up`` starts its head; stop it after."""
    port, dashboard_port = _free_port(), _free_port()
    ip = services.get_node_ip_address()
    address = f"{ip}:{port}"
    config = fake_config(yaml.safe_load(cluster_yaml.read_text()), address, scale)
    folder = Path(tempfile.mkdtemp(prefix="raycache-fake-cluster-"))
    path = folder / "autoscaling.json"
    path.write_text(json.dumps(config))
    environment = dict(
        os.environ,
        RAY_FAKE_CLUSTER="1",
        RAY_AUTH_MODE="disabled",  # a local cluster: no token to hand its drivers
        RAY_enable_autoscaler_v2="1",
        AUTOSCALER_UPDATE_INTERVAL_S="1",
        RAY_CLOUD_INSTANCE_ID=FAKE_HEAD_NODE_ID,
        RAY_OVERRIDE_NODE_ID_FOR_TESTING=FAKE_HEAD_NODE_ID,
    )
    environment.pop("RAY_ADDRESS", None)
    command = [
        RAY, "start", "--head", f"--port={port}",
        f"--autoscaling-config={path}", f"--num-cpus={scale.head_cpus}",
        f"--object-store-memory={scale.object_store_bytes}", "--disable-usage-stats",
        f"--include-dashboard={str(dashboard).lower()}", f"--dashboard-port={dashboard_port}",
    ]  # fmt: skip
    try:
        subprocess.run(command, env=environment, check=True, capture_output=True, text=True)
        url = f"http://127.0.0.1:{dashboard_port}"  # the dashboard listens on loopback
        if dashboard:
            _wait_for(url + "/api/version")
        yield FakeCluster(address, url if dashboard else None, port)
    finally:
        stop(port)


def stop(port: int) -> None:
    """Stop every process of the cluster whose GCS listens on ``port``, and only those.

    Those that name the port, and all their descendants: the raylets' workers and agents
    (which rename themselves), and the fake workers the autoscaler started.
    """
    marks = (f":{port} ", f"--gcs_server_port={port} ")
    parents = _parents()
    doomed = {pid for pid, line in _command_lines() if any(mark in line for mark in marks)}
    while True:
        more = {pid for pid, parent in parents.items() if parent in doomed} - doomed
        if not more:
            break
        doomed |= more
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in doomed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(pid) for pid in doomed):
            time.sleep(0.2)


def _command_lines() -> Iterator[tuple[int, str]]:
    for pid in _pids():
        with contextlib.suppress(OSError):
            line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            yield pid, line.decode(errors="replace")


def _parents() -> dict[int, int]:
    parents = {}
    for pid in _pids():
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])  # the name may hold spaces
    return parents


def _pids() -> list[int]:
    me = os.getpid()
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and int(p.name) != me]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for(url: str, timeout: float = 120.0) -> None:
    """Wait until ``url`` answers, as the dashboard does once its job API is up."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
