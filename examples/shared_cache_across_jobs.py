"""Two drivers share one cache, and values outlive the driver that cached them.

This script starts Ray and the cache ``shared-demo``, then runs a second driver as a
subprocess that attaches to the same Ray cluster, puts a value and calls a memoized
function. Once that process has exited, this driver reads the value back and calls the
identically defined memoized function: every call is a hit, and a log of executions
shows the work ran only in the other driver's calls.
"""

import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import ray

import raycache

CACHE = "shared-demo"
INPUTS = (10, 20, 30)

# Both drivers run this same source, so the function has the same fingerprint (module
# __main__, same name, same bytecode) in each and its calls map to the same keys.
FUNCTION_SOURCE = textwrap.dedent(
    """
    import time

    import raycache


    @raycache.memoize(cache="shared-demo", ignore=["log_path"])
    def slow_total(n: int, log_path: str) -> int:
        with open(log_path, "a") as log:  # one line per real execution
            log.write(f"{n}\\n")
        time.sleep(0.5)
        return sum(range(n))
    """
)

# The second driver: attach to this Ray cluster, fill the cache, exit.
SECOND_DRIVER = (
    textwrap.dedent(
        """
    import sys

    import ray

    import raycache

    ray.init(address=sys.argv[1], include_dashboard=False)
    cache = raycache.Cache.attach("shared-demo")
    cache.put("message", "written by the second driver")
    cache.get_or_compute(("config", "v1"), dict, retries=3, region="eu")
    """
    )
    + FUNCTION_SOURCE
    + textwrap.dedent(
        """
    print("second driver computed", [slow_total(n, sys.argv[2]) for n in (10, 20, 30)])
    """
    )
)


def run_second_driver(gcs_address: str, log_path: Path) -> None:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", SECOND_DRIVER, gcs_address, str(log_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    print(done.stdout.strip(), f"in {time.perf_counter() - started:.1f} s, and exited")


def never_called() -> dict[str, object]:
    raise AssertionError("the value should have come from the second driver")


def main() -> None:
    ray.init(include_dashboard=False)
    cache = raycache.Cache(CACHE, capacity="64MiB")
    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "executions.log"
        log_path.touch()
        run_second_driver(ray.get_runtime_context().gcs_address, log_path)

        # The second driver is gone; what it cached is still here.
        assert cache.get("message") == "written by the second driver"
        config = cache.get_or_compute(("config", "v1"), never_called)
        assert config == {"retries": 3, "region": "eu"}, config

        namespace: dict[str, object] = {"__name__": __name__}
        exec(FUNCTION_SOURCE, namespace)  # the very same definition as the other driver
        slow_total = namespace["slow_total"]
        started = time.perf_counter()
        totals = [slow_total(n, str(log_path)) for n in INPUTS]  # type: ignore[operator]
        elapsed = time.perf_counter() - started
        assert totals == [sum(range(n)) for n in INPUTS], totals
        executions = log_path.read_text().split()

    assert executions == [str(n) for n in INPUTS], "only the second driver should compute"
    info = slow_total.cache_info()  # type: ignore[attr-defined]
    assert info.hits == len(INPUTS) and info.misses == 0, info
    print(f"first driver read back: message, config {config}, totals {totals}")
    print(
        f"{len(INPUTS)} memoized calls here: {info.hits} hits in {elapsed:.2f} s; "
        f"executions ever: {len(executions)}, all in the second driver"
    )
    cache.shutdown()


if __name__ == "__main__":
    main()
