"""Cluster tests: raycache on a real Ray, one local instance per session or a multi-node one."""
