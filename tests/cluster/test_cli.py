"""The raycache command, attached to the test session's cluster as a separate process."""

from __future__ import annotations

import json

import pytest

import raycache
from raycache.cli import main
from tests.helpers.cli import run_cli


def test_status_stats_clear_shutdown(fresh_cache: raycache.Cache) -> None:
    fresh_cache.put_many({i: i for i in range(10)})
    fresh_cache.get(1)
    status = run_cli("status", "--json")
    assert status.returncode == 0, status.stderr
    rows = {row["name"]: row for row in json.loads(status.stdout)}
    assert rows[fresh_cache.name]["entries"] == 10

    stats = run_cli("stats", fresh_cache.name)
    assert stats.returncode == 0, stats.stderr
    assert "hit_ratio" in stats.stdout and "shard-1" in stats.stdout

    assert run_cli("clear", fresh_cache.name).stdout.strip() == f"cleared {fresh_cache.name}"
    assert fresh_cache.stats()["entries"] == 0
    assert json.loads(run_cli("shutdown", fresh_cache.name, "--json").stdout) == {
        "shutdown": fresh_cache.name
    }
    with pytest.raises(raycache.CacheNotFoundError):
        raycache.Cache.attach(fresh_cache.name)


def test_unknown_cache_is_a_clear_error(ray_session: None) -> None:
    done = run_cli("stats", "no-such-cache")
    assert done.returncode == 1
    assert "no cache named 'no-such-cache'" in done.stderr


def test_usage_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2


def test_bench_help_shows_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--help"])
    assert exit_info.value.code == 0
    usage = capsys.readouterr().out
    assert "--quick" in usage and "--out" in usage
