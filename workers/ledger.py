"""The message ledger in Redis: exactly one reply per message, in order per conversation.

Redis redelivers a task whose worker died before acking it (acks late), and platforms resend
events, so the same message can reach several workers. Before any side effect a worker
*claims* the message (a lease that it renews while working); after the reply went out it marks
the message *done*. A redelivered message that is done is acked and dropped; one whose claim is
held by a live worker is dropped too (that worker's own delivery is still unacked, so nothing is
lost if it dies: its copy comes back once the lease and the visibility timeout have passed).

Order: admission gives every queued message of a conversation the next sequence number; a worker
waits until the conversation's ``done_seq`` reaches ``seq - 1``. We chose sequence numbers over
partitioned queues because they keep one shared queue (any worker takes any message, so scaling
out needs no rebalancing) while still ordering each conversation, even across machines.
"""

from __future__ import annotations

import asyncio
import logging
import time
from enum import StrEnum

from redis.asyncio import Redis

from gateway.shared.keys import DONE_TTL_S, MessageKeys

__all__ = ["Claim", "Ledger"]

log = logging.getLogger(__name__)

_BEGIN = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 'done' end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 'claimed' end
if redis.call('GET', KEYS[2]) == ARGV[1] then return 'claimed' end
return 'busy'
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

_FINISH = """
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
local seq = tonumber(ARGV[4])
if seq > 0 then
  local current = tonumber(redis.call('GET', KEYS[3]) or '0')
  if seq > current then redis.call('SET', KEYS[3], seq, 'EX', ARGV[2]) end
end
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Claim(StrEnum):
    CLAIMED = "claimed"
    DONE = "done"
    BUSY = "busy"


class Ledger:
    def __init__(self, redis: Redis, *, lease_s: float = 30.0, order_wait_s: float = 120.0) -> None:
        self.redis = redis
        self.lease_ms = int(lease_s * 1000)
        self.order_wait_s = order_wait_s
        self._begin = redis.register_script(_BEGIN)
        self._renew = redis.register_script(_RENEW)
        self._finish = redis.register_script(_FINISH)
        self._release = redis.register_script(_RELEASE)

    async def begin(self, keys: MessageKeys, token: str) -> Claim:
        result = await self._begin(keys=[keys.done, keys.claim], args=[token, self.lease_ms])
        return Claim(result.decode() if isinstance(result, bytes) else result)

    async def keep_alive(self, keys: MessageKeys, token: str) -> None:
        """Renew the lease until cancelled; a lost lease is logged (another worker may take over)."""
        interval = self.lease_ms / 3000
        while True:
            await asyncio.sleep(interval)
            try:
                if not await self._renew(keys=[keys.claim], args=[token, self.lease_ms]):
                    log.warning("lease lost claim=%s: this message may be handled twice", keys.claim)
                    return
            except Exception as exc:  # a Redis hiccup must not kill the message being handled
                log.warning("lease renewal failed claim=%s error=%r", keys.claim, exc)

    async def wait_turn(self, keys: MessageKeys, seq: int) -> bool:
        """Wait until every earlier message of the conversation is done; False if we gave up waiting."""
        if seq <= 1:
            return True
        deadline = time.monotonic() + self.order_wait_s
        delay = 0.005
        while True:
            done = int(await self.redis.get(keys.done_seq) or 0)
            if done >= seq - 1:
                return True
            if time.monotonic() >= deadline:
                log.warning(
                    "order wait gave up conversation_seq=%s waiting_for=%d done=%d after=%.0fs",
                    keys.done_seq,
                    seq - 1,
                    done,
                    self.order_wait_s,
                )
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)

    async def finish(self, keys: MessageKeys, token: str, seq: int, outcome: str) -> None:
        await self._finish(keys=[keys.done, keys.claim, keys.done_seq], args=[token, DONE_TTL_S, outcome, max(seq, 0)])

    async def release(self, keys: MessageKeys, token: str) -> None:
        """Give the claim back without finishing (the task will be retried)."""
        await self._release(keys=[keys.claim], args=[token])
