"""Read-through in front of a slow SQLite database, with a TTL and invalidation on write.

The same skewed stream of reads runs twice: straight against the database, then through
a raycache ``Cache`` with ``get_or_compute``. The loader queries the database over this
process's own ``sqlite3`` connection, which could never be pickled to a Ray task: raycache
runs loaders in the caller. Four reader threads share the stream, and still every
distinct product is queried once, because concurrent misses of one key wait for the one
caller that holds the key's lease. Writes update the database first and then delete the
key, so the next read refetches; every read after the writes is checked against the
database's current row.
"""

import random
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import ray

import raycache

KEYS = 50
READS = 400
READERS = 4
QUERY_DELAY = 0.01  # seconds: stands in for a query that is genuinely expensive
TTL = 60.0  # seconds: bounds staleness should a write ever skip its invalidation


class Database:
    """A SQLite file of products, whose reads are slow and counted."""

    def __init__(self, path: Path) -> None:
        # One connection that the reader threads share, one query at a time.
        self.conn = sqlite3.connect(path, check_same_thread=False)
        self.lock = threading.Lock()
        self.queries = 0
        self.conn.execute("CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
        rows = [(i, f"product-{i}", round(1.0 + i * 0.25, 2)) for i in range(KEYS)]
        self.conn.executemany("INSERT INTO products VALUES (?, ?, ?)", rows)
        self.conn.commit()

    def fetch(self, product_id: int) -> dict[str, Any]:
        with self.lock:
            self.queries += 1
        time.sleep(QUERY_DELAY)
        return self.peek(product_id)

    def peek(self, product_id: int) -> dict[str, Any]:
        """Read a row without the delay or the count: the checker's ground truth."""
        with self.lock:
            row = self.conn.execute(
                "SELECT id, name, price FROM products WHERE id = ?", (product_id,)
            ).fetchone()
        return {"id": row[0], "name": row[1], "price": row[2]}

    def set_price(self, product_id: int, price: float) -> None:
        with self.lock:
            self.conn.execute("UPDATE products SET price = ? WHERE id = ?", (price, product_id))
            self.conn.commit()


def zipf_stream(n: int, keys: int, seed: int = 7) -> list[int]:
    # A few hot products and a long tail, as real traffic has.
    weights = [1.0 / (rank + 1) ** 1.1 for rank in range(keys)]
    return random.Random(seed).choices(range(keys), weights=weights, k=n)


def cache_key(product_id: int) -> tuple[str, int]:
    return ("product", product_id)


def read_through(cache: raycache.Cache, db: Database, product_id: int) -> dict[str, Any]:
    # On a miss, db.fetch runs here, over this process's connection, and the cache
    # remembers its row for TTL seconds. Concurrent misses of one key share one query.
    row: dict[str, Any] = cache.get_or_compute(cache_key(product_id), db.fetch, product_id, ttl=TTL)
    return row


def update_price(cache: raycache.Cache, db: Database, product_id: int, price: float) -> None:
    # Write the source of truth first, then drop the cached copy: a reader in between
    # sees the old row at worst, never a cached row newer than the database.
    db.set_price(product_id, price)
    cache.delete(cache_key(product_id))


def timed_reads(stream: list[int], read: Any) -> tuple[list[dict[str, Any]], float]:
    """Read the whole stream with READERS threads, each taking every READERS-th read."""
    rows: list[dict[str, Any]] = [{}] * len(stream)

    def reader(start: int) -> None:
        for i in range(start, len(stream), READERS):
            rows[i] = read(stream[i])

    threads = [threading.Thread(target=reader, args=(start,)) for start in range(READERS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return rows, time.perf_counter() - started


def main() -> None:
    ray.init(include_dashboard=False)
    cache = raycache.Cache("read-through-sqlite", capacity="64MiB")
    stream = zipf_stream(READS, KEYS)
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "shop.db")

        direct_rows, direct_s = timed_reads(stream, db.fetch)
        direct_queries, db.queries = db.queries, 0
        cached_rows, cached_s = timed_reads(stream, lambda i: read_through(cache, db, i))
        assert cached_rows == direct_rows, "the cache changed what readers see"
        assert db.queries == len(set(stream)), "each distinct key should be queried once"
        print(
            f"{READS} reads by {READERS} threads over {KEYS} products "
            f"({len(set(stream))} distinct requested)"
        )
        print(f"  without cache: {direct_queries:4d} queries, {direct_s:.2f} s")
        print(f"  with cache:    {db.queries:4d} queries, {cached_s:.2f} s")

        hot = stream[:5]  # the hottest products are surely cached by now
        for product_id in hot:
            update_price(cache, db, product_id, 99.99)
        queries_before = db.queries
        for product_id in stream:
            assert read_through(cache, db, product_id) == db.peek(product_id), product_id
        print(
            f"after updating {len(set(hot))} products: every read matched the database, "
            f"{db.queries - queries_before} refetches"
        )
        db.conn.close()

    cache.put(("product", "flash-sale"), {"price": 1.0}, ttl=0.5)
    time.sleep(1.0)  # past its TTL: the entry is gone without anyone deleting it
    assert cache.get(("product", "flash-sale")) is None
    print("an entry with a 0.5 s TTL expired on its own")
    stats = cache.stats()
    print(f"cache hit ratio {stats['hit_ratio']:.2f} over {stats['hits'] + stats['misses']} reads")
    cache.shutdown()


if __name__ == "__main__":
    main()
