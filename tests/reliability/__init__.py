"""Reliability tests: chaos, injected faults, stalls, load, and fuzzed input and files."""
