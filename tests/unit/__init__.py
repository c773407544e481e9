"""Unit tests: the pure core, the storage tier and the protocol, with no Ray at all."""
