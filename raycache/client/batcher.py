"""Gets from many coroutines, sent as one ``get_many`` per shard per event-loop tick.

Each ``get`` that a coroutine awaits joins the batch of the loop's current tick. When the
tick ends (the batch is sent by a callback that runs after every coroutine made ready in
this tick has had its turn), the batch goes out as one ``get_many`` call per owning
shard, through :meth:`ShardClient.fan_out`, and every waiter receives its key's reply.
Two waiters of one key share one slot in the batch. A lone get is sent as a plain
``get``: one call either way. With a near cache, the batch is one tracked read
(:meth:`~raycache.client.near.NearReader.read`), whose values the near cache keeps.

The shard's faults are misses, as for any read: a shard that is down or does not answer
in time leaves its keys' waiters with MISS.
"""

from __future__ import annotations

import asyncio
import logging

from raycache.client.near import NearReader
from raycache.client.shard_client import ShardClient, replies_by_digest
from raycache.client.steps import Steps, run_async
from raycache.core.protocol import Code, Reply

logger = logging.getLogger(__name__)

_MISS = Reply(Code.MISS)


class GetBatcher:
    """The gets that one event loop asked of one cache in the current tick."""

    def __init__(
        self,
        client: ShardClient,
        loop: asyncio.AbstractEventLoop,
        reader: NearReader | None = None,
    ) -> None:
        self.loop = loop
        self._client = client
        self._reader = reader  # a near cache's: its reads are tracked, and kept
        self._waiting: dict[bytes, list[asyncio.Future[Reply]]] = {}
        self._sending: set[asyncio.Task[None]] = set()  # strong references, until sent

    def reply(self, digest: bytes) -> asyncio.Future[Reply]:
        """Return the future reply to a get of ``digest``, asked at the end of this tick."""
        if not self._waiting:
            self.loop.call_soon(self._flush)
        future: asyncio.Future[Reply] = self.loop.create_future()
        self._waiting.setdefault(digest, []).append(future)
        return future

    def _flush(self) -> None:
        batch, self._waiting = self._waiting, {}
        task = self.loop.create_task(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: dict[bytes, list[asyncio.Future[Reply]]]) -> None:
        try:
            replies = await run_async(self._replies(list(batch)))
        except Exception as error:  # not the cache's fault (those are misses): pass it on
            logger.debug("a batch of gets failed: %r", error)
            replies = {}
            for futures in batch.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(error)
        for digest, futures in batch.items():
            for future in futures:
                if not future.done():  # its waiter may have been cancelled meanwhile
                    future.set_result(replies.get(digest, _MISS))

    def _replies(self, digests: list[bytes]) -> Steps[dict[bytes, Reply]]:
        if self._reader is not None:
            groups = yield from self._reader.read(self._client, digests)
        elif len(digests) == 1:
            reply = yield from self._client.get(digests[0])
            return {digests[0]: reply}
        else:
            groups = yield from self._client.get_many(digests)
        return replies_by_digest(digests, groups)
