"""Benchmarks of the pure core, with no Ray: hashing, the ring, the store."""
