"""What the benchmarks measure against: Redis and memcached servers, baseline actors, datasets."""
