"""Scripts that run raycache on clusters of fake nodes, for tests and for CI."""
