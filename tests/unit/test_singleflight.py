"""Single-flight bookkeeping as a state machine against a model, without Ray or sleeps."""

from __future__ import annotations

import threading
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from raycache.core.singleflight import ELECTION_S, SingleFlight
from tests.helpers.clock import Clock

KEYS = st.sampled_from(["a", "b", "c"])
TAGS = st.sampled_from([(), ("t",), ("t", "u")])


class SingleFlightMachine(RuleBasedStateMachine):
    """Model: the current token and tags per key, the tokens ever launched, elections."""

    @initialize()
    def start_empty(self) -> None:
        self.clock = Clock()
        self.flights: SingleFlight[str] = SingleFlight(clock=self.clock)
        self.current: dict[str, tuple[int, tuple[str, ...]]] = {}
        self.launched: list[tuple[str, int]] = []
        self.elected_at: dict[str, float] = {}
        self.deadlines: dict[str, float] = {}  # of the current flights that are leases

    @rule(key=KEYS, tags=TAGS)
    def start(self, key: str, tags: tuple[str, ...]) -> None:
        seen: list[int] = []

        def launch(token: int) -> str:
            seen.append(token)
            return f"{key}:{token}"

        handle = self.flights.start(key, launch, ttl=None, tags=tags)
        self.deadlines.pop(key, None)
        (token,) = seen
        assert token not in [t for _, t in self.launched], "tokens are never reused"
        assert handle == f"{key}:{token}"
        self.launched.append((key, token))
        self.current[key] = (token, tags)

    @rule(key=KEYS, tags=TAGS, lease_s=st.sampled_from([1.0, 5.0]))
    def lease(self, key: str, tags: tuple[str, ...], lease_s: float) -> None:
        replaced = self.flights.get(key)
        flight = self.flights.lease(key, ttl=None, tags=tags, lease_s=lease_s)
        assert flight.is_lease and not self.flights.expired(flight)
        assert flight.token not in [t for _, t in self.launched], "tokens are never reused"
        if replaced is not None:
            assert replaced.done.is_set() and replaced.outcome is None, "its waiters look again"
        self.launched.append((key, flight.token))
        self.current[key] = (flight.token, tags)
        self.deadlines[key] = self.clock.now + lease_s

    @rule(data=st.data(), lease_s=st.sampled_from([1.0, 5.0]))
    def renew(self, data: Any, lease_s: float) -> None:
        if not self.launched:
            return
        key, token = data.draw(st.sampled_from(self.launched))
        current = self.current.get(key, (None,))[0] == token and key in self.deadlines
        assert self.flights.renew(key, token, lease_s) == current
        if current:
            self.deadlines[key] = self.clock.now + lease_s

    @rule(data=st.data())
    def settle_any_launched(self, data: Any) -> None:
        if not self.launched:
            return
        key, token = data.draw(st.sampled_from(self.launched))
        flight = self.flights.finish(key, token, outcome="value")
        if self.current.get(key, (None,))[0] == token:
            assert flight is not None and flight.token == token
            assert flight.done.is_set() and flight.outcome == "value"
            del self.current[key]
            self.deadlines.pop(key, None)
            self.elected_at.pop(key, None)
        else:
            assert flight is None, "only the current flight may land"

    @rule(key=KEYS)
    def forget(self, key: str) -> None:
        flight = self.flights.get(key)
        assert self.flights.forget(key) == (key in self.current)
        assert flight is None or (flight.done.is_set() and flight.outcome is None)
        self.current.pop(key, None)
        self.deadlines.pop(key, None)

    @rule(tag=st.sampled_from(["t", "u", "v"]))
    def forget_tagged(self, tag: str) -> None:
        expected = {key for key, (_, tags) in self.current.items() if tag in tags}
        assert set(self.flights.forget_tagged(tag)) == expected
        for key in expected:
            del self.current[key]
            self.deadlines.pop(key, None)

    @rule()
    def clear(self) -> None:
        self.flights.clear()
        self.current.clear()
        self.deadlines.clear()
        self.elected_at.clear()

    @rule(seconds=st.floats(min_value=0, max_value=2 * ELECTION_S))
    def advance(self, seconds: float) -> None:
        self.clock.now += seconds

    @rule(key=KEYS, age=st.floats(min_value=0, max_value=100), refresh_after=st.just(10.0))
    def elect(self, key: str, age: float, refresh_after: float) -> None:
        last = self.elected_at.get(key)
        expected = (
            age >= refresh_after
            and key not in self.current
            and (last is None or self.clock.now - last >= ELECTION_S)
        )
        assert self.flights.elect(key, age, refresh_after) == expected
        if expected:
            self.elected_at[key] = self.clock.now

    @invariant()
    def agrees_with_the_model(self) -> None:
        assert set(self.flights) == set(self.current)
        assert len(self.flights) == len(self.current)
        for key, (token, tags) in self.current.items():
            flight = self.flights.get(key)
            assert flight is not None and (flight.token, flight.tags) == (token, tags)
            assert not flight.done.is_set(), "a current flight's waiters keep waiting"
            if key in self.deadlines:
                assert self.flights.expired(flight) == (self.clock.now >= self.deadlines[key])
            else:
                assert not flight.is_lease and not self.flights.expired(flight)


TestSingleFlight = SingleFlightMachine.TestCase


def test_one_election_per_window() -> None:
    clock = Clock()
    flights: SingleFlight[str] = SingleFlight(clock=clock)
    assert flights.elect("k", age=20, refresh_after=10)
    assert not flights.elect("k", age=25, refresh_after=10)  # another caller, same window
    clock.now += ELECTION_S
    assert flights.elect("k", age=60, refresh_after=10)  # the refresh never came: re-elect


def test_no_election_while_a_refresh_is_in_flight() -> None:
    flights: SingleFlight[str] = SingleFlight(clock=lambda: 0.0)
    flights.start("k", str, ttl=None, tags=())
    assert not flights.elect("k", age=99, refresh_after=1)


def test_waiting_out_a_flight_returns_its_outcome_once_it_ends() -> None:
    flights: SingleFlight[str] = SingleFlight()
    lease = flights.lease("k", ttl=None, tags=(), lease_s=60.0)
    ender = threading.Timer(0.05, lambda: flights.finish("k", lease.token, "value"))
    ender.start()
    assert flights.wait_out(lease, timeout_s=60.0) == "value"


def test_waiting_out_an_expired_lease_returns_at_once_with_nothing() -> None:
    clock = Clock()
    flights: SingleFlight[str] = SingleFlight(clock=clock)
    lease = flights.lease("k", ttl=None, tags=(), lease_s=10.0)
    clock.now = 10.0  # its holder stopped renewing
    assert flights.wait_out(lease, timeout_s=60.0) is None
