"""Redis and memcached servers on loopback, started for a benchmark and always stopped.

Each server runs as a child process on a free port, with persistence off and limits
raised so that values of a few hundred megabytes fit. The context managers return once
the server answers, and terminate it on the way out, whatever happened inside.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

HOST = "127.0.0.1"
START_TIMEOUT_S = 10.0
MAX_VALUE_MB = 512
MEMCACHED_MEMORY_MB = 2 * MAX_VALUE_MB  # memcached wants items at most half its memory


class ServerUnavailable(RuntimeError):
    """A server could not be started: its binary is missing or it did not answer."""


@dataclass(frozen=True)
class Server:
    """A running server: where it listens and which version it is."""

    name: str
    host: str
    port: int
    version: str


@contextmanager
def redis_server() -> Iterator[Server]:
    """Run ``redis-server`` on a free loopback port, in memory only."""
    port = free_port()
    command = [
        *("--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"),
        *("--protected-mode", "no", "--proto-max-bulk-len", f"{MAX_VALUE_MB}mb"),
    ]
    with _running("redis-server", command, port, b"PING\r\n", b"+PONG") as server:
        yield server


@contextmanager
def memcached_server() -> Iterator[Server]:
    """Run ``memcached`` on a free loopback port, sized for values of hundreds of MB."""
    port = free_port()
    command = [
        *("-l", HOST, "-p", str(port), "-U", "0"),
        *("-m", str(MEMCACHED_MEMORY_MB), "-I", f"{MAX_VALUE_MB}m"),
        # memcached refuses to start as root unless told which user to run as.
        *(("-u", "root") if os.geteuid() == 0 else ()),
    ]
    with _running("memcached", command, port, b"version\r\n", b"VERSION") as server:
        yield server


def binary_version(binary: str) -> str | None:
    """Return the version ``binary --version`` reports, or None if it is not installed."""
    path = shutil.which(binary)
    if path is None:
        return None
    done = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    found = re.search(r"\d+\.\d+\.\d+", done.stdout)
    return found.group(0) if found else done.stdout.strip()


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def _running(
    binary: str, arguments: Sequence[str], port: int, ping: bytes, pong: bytes
) -> Iterator[Server]:
    path = shutil.which(binary)
    if path is None:
        raise ServerUnavailable(f"{binary} not found")
    process = subprocess.Popen(
        [path, *arguments], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _wait_until_answering(binary, process, port, ping, pong)
        yield Server(binary, HOST, port, binary_version(binary) or "unknown")
    finally:
        process.terminate()
        try:
            process.wait(timeout=START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def _wait_until_answering(
    binary: str, process: subprocess.Popen[bytes], port: int, ping: bytes, pong: bytes
) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode(errors="replace").strip() if process.stderr else ""
            raise ServerUnavailable(f"{binary} exited: {error or process.returncode}")
        if _answers(port, ping, pong):
            return
        time.sleep(0.05)
    raise ServerUnavailable(f"{binary} did not answer within {START_TIMEOUT_S:g} s")


def _answers(port: int, ping: bytes, pong: bytes) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1) as connection:
            connection.sendall(ping)
            return connection.recv(64).startswith(pong)
    except OSError:
        return False
