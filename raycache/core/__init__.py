"""The pure core: everything that decides, and nothing that talks to Ray.

Key encoding and digests, content hashing of values, function fingerprints, the hash
ring, the byte-budgeted store and its eviction policies, single-flight bookkeeping, the
wire protocol and argument validation. No module here imports Ray, so each one is
tested and benchmarked in a plain Python process, with injected clocks.
"""
