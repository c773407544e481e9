"""Benchmarks on a local Ray: raycache against a raw actor, Redis, memcached and joblib."""
