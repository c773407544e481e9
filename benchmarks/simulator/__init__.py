"""The eviction-policy simulator: hit ratios on synthetic traces, against libCacheSim and Bélády."""
