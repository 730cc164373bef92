"""The message ledger: the durable record that guarantees every admitted message an answer.

The broker is not trusted to keep a message: kombu's Redis transport loses one in several windows
(a worker killed between the queue pop and the ``unacked`` record; a redelivered copy acknowledged
while its holder still works; a Redis restart). So admission writes each message's record first,
in one script, and the queue only carries a pointer to it::

    accepted ──► claimed ──► sending ──► done      (record kept DONE_TTL_S for dedupe, envelope dropped)
        ▲           │
        └─ released (retry later) or lease expired ◄─┘   → the reaper puts it on the queue again

- **Admission** (``admit``): dedupe on the message key, the conversation's next sequence number,
  the record with the envelope, an entry in the conversation's open set and in the reaper's index.
- **A worker** ``begin``s (claims with a lease it renews), waits for its ``turn`` (the lowest open
  sequence number of its conversation; ``begin_turn`` claims and checks the turn once, in one
  script), ``commit``s just before egress (still the holder? nobody finished it?), then ``finish``es.
  A copy of a message whose claim is live is left to its holder.
- **A streamed reply** records its platform handle (``record_stream``: the message id or stream id
  being edited) before its first visible output; a redelivered message reads it (``stream_handle``)
  and finishes that same platform message instead of posting a second one.
- **The reaper** (``reap``, run by every worker every second; the script is atomic, so two reapers
  never dispatch the same entry twice) re-dispatches an unfinished message that nobody holds once
  its task has provably left the queue: a task dispatched later has started (the queue is FIFO), or
  the queue is empty. A message whose handling began ``max_attempts`` times and never finished (it
  keeps killing its workers) is answered with an apology and a recorded reason by the next worker.

Times are the Redis server's (``TIME``), so workers on machines with skewed clocks agree.
Every key name comes from ``gateway.shared.keys``; both the gateway and the workers import this
module, and it imports nothing of either.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from redis.asyncio import Redis

from gateway.shared import keys

__all__ = ["Admitted", "Begun", "Claim", "Commit", "Ledger", "LedgerStats"]

_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: record, conversation seq, conversation open, ledger open, dispatched
# ARGV: message key, envelope JSON, conversation key, first check after (ms), seq TTL (s)
_ADMIT = (
    _NOW_MS
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, 0} end
local seq = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[5])
local d = redis.call('INCR', KEYS[5])
redis.call('HSET', KEYS[1], 'env', ARGV[2], 'seq', seq, 'conv', ARGV[3], 'state', 'accepted',
           'dispatch', d, 'attempts', 0, 'retries', 0, 'accepted_ms', now)
redis.call('ZADD', KEYS[3], seq, ARGV[1])
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[4]), ARGV[1])
return {seq, d}
"""
)

# KEYS: record, claim, started.  ARGV: token, lease (ms), dispatch number
_CLAIM = """
local d = tonumber(ARGV[3])
if d > tonumber(redis.call('GET', KEYS[3]) or '0') then redis.call('SET', KEYS[3], d) end
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'done' then return {'done'} end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return {'busy'} end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[1], 'state', 'claimed')
local f = redis.call('HMGET', KEYS[1], 'env', 'seq', 'conv', 'retries')
"""
_BEGIN = _CLAIM + "return {'claimed', f[1], f[2], f[3], state, f[4]}"

# Whether the message of sequence number ``seq`` may go: 0 while an earlier message of the conversation
# is unfinished; else this attempt's number (attempts count handling that really began, so messages
# that were only waiting for their turn in a killed worker do not count).
_TURN_FUNCTION = """
local function turn(open_key, record_key, seq, record_prefix)
  while true do
    local head = redis.call('ZRANGE', open_key, 0, 0, 'WITHSCORES')
    if #head == 0 or tonumber(head[2]) >= seq then return redis.call('HINCRBY', record_key, 'attempts', 1) end
    local state = redis.call('HGET', record_prefix .. head[1], 'state')
    if state and state ~= 'done' then return 0 end
    redis.call('ZREM', open_key, head[1])
  end
end
"""

# begin and the first turn check in one round trip (a worker's common case: nothing ahead of it).
# KEYS: record, claim, started.  ARGV: token, lease (ms), dispatch number, record prefix,
# conversation open key's prefix and suffix (the conversation is the record's own ``conv``).
_BEGIN_TURN = (
    _TURN_FUNCTION
    + _CLAIM
    + """
local attempt = 0
if f[3] and f[3] ~= '' then attempt = turn(ARGV[5] .. f[3] .. ARGV[6], KEYS[1], tonumber(f[2]), ARGV[4]) end
return {'claimed', f[1], f[2], f[3], state, f[4], attempt}
"""
)

# KEYS: claim, record.  ARGV: token, lease (ms)
_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if holder then return 0 end
local state = redis.call('HGET', KEYS[2], 'state')
if not state or state == 'done' then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: conversation open, record.  ARGV: sequence number, record prefix
_TURN = _TURN_FUNCTION + "return turn(KEYS[1], KEYS[2], tonumber(ARGV[1]), ARGV[2])"

# KEYS: record, claim.  ARGV: token, lease (ms)
_COMMIT = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'done' then return 'done' end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return 'lost' end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[1], 'state', 'sending')
return 'ok'
"""

# KEYS: record, claim, conversation open, ledger open.  ARGV: token, outcome, TTL (s), message key
_FINISH = """
if redis.call('HGET', KEYS[1], 'state') == 'done' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'done', 'outcome', ARGV[2])
redis.call('HDEL', KEYS[1], 'env')
redis.call('EXPIRE', KEYS[1], ARGV[3])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
redis.call('ZREM', KEYS[3], ARGV[4])
redis.call('ZREM', KEYS[4], ARGV[4])
return 1
"""

# KEYS: record, claim, ledger open.  ARGV: token, delay (ms), message key
_RELEASE = (
    _NOW_MS
    + """
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'done' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'accepted')
if tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0') > 0 then redis.call('HINCRBY', KEYS[1], 'attempts', -1) end
redis.call('HINCRBY', KEYS[1], 'retries', 1)
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), ARGV[3])
return 1
"""
)

# KEYS: record, claim.  ARGV: token, stream handle. Only the holder of an unfinished message writes it.
_RECORD_STREAM = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'done' then return 0 end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'stream', ARGV[2])
return 1
"""

# KEYS: ledger open, dispatched, started, the broker's queue list
# ARGV: recheck after (ms), batch limit, record prefix, claim prefix
_REAP = (
    _NOW_MS
    + """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local started = tonumber(redis.call('GET', KEYS[3]) or '0')
local queue_empty = redis.call('LLEN', KEYS[4]) == 0
local later = now + tonumber(ARGV[1])
local out = {}
for _, key in ipairs(due) do
  local f = redis.call('HMGET', ARGV[3] .. key, 'state', 'dispatch')
  if not f[1] or f[1] == 'done' then
    redis.call('ZREM', KEYS[1], key)
  else
    redis.call('ZADD', KEYS[1], later, key)
    if redis.call('EXISTS', ARGV[4] .. key) == 0 and (tonumber(f[2]) <= started or queue_empty) then
      local d = redis.call('INCR', KEYS[2])
      redis.call('HSET', ARGV[3] .. key, 'dispatch', d)
      table.insert(out, key)
      table.insert(out, d)
    end
  end
end
return out
"""
)


class Claim(StrEnum):
    CLAIMED = "claimed"
    BUSY = "busy"  # another live worker holds it: leave it to them
    DONE = "done"  # already answered (or recorded why not)


class Commit(StrEnum):
    OK = "ok"
    LOST = "lost"  # our lease ran out and another worker holds it now: do not send
    DONE = "done"  # someone else finished it meanwhile: do not send


@dataclass(frozen=True, slots=True)
class Admitted:
    seq: int
    dispatch: int


@dataclass(frozen=True, slots=True)
class Begun:
    claim: Claim
    envelope_json: str = ""
    seq: int = 0
    conversation_key: str = ""
    previous_state: str = ""  # "sending": the previous holder died while sending; delivery is unknown
    retries: int = 0
    attempt: int = 0  # from begin_turn: this attempt's number if its turn has come, else 0 (wait for it)


@dataclass(frozen=True, slots=True)
class LedgerStats:
    open: int
    dispatched: int
    started: int


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


def _begun(result: list[object]) -> Begun:
    verdict = Claim(_text(result[0]))
    if verdict in (Claim.BUSY, Claim.DONE):
        return Begun(verdict)
    return Begun(
        verdict,
        envelope_json=_text(result[1]),
        seq=int(_text(result[2]) or 0),
        conversation_key=_text(result[3]),
        previous_state=_text(result[4]),
        retries=int(_text(result[5]) or 0),
        attempt=int(_text(result[6]) or 0) if len(result) > 6 else 0,
    )


class Ledger:
    def __init__(
        self,
        redis: Redis,
        *,
        lease_s: float = 5.0,
        max_attempts: int = 5,
        queue: str = "patchbay",
        done_ttl_s: int = keys.DONE_TTL_S,
    ) -> None:
        self.redis = redis
        self.lease_ms = int(lease_s * 1000)
        self.max_attempts = max_attempts
        self.queue = queue
        self.done_ttl_s = done_ttl_s
        self._admit = redis.register_script(_ADMIT)
        self._begin = redis.register_script(_BEGIN)
        self._begin_turn = redis.register_script(_BEGIN_TURN)
        self._renew = redis.register_script(_RENEW)
        self._turn = redis.register_script(_TURN)
        self._commit = redis.register_script(_COMMIT)
        self._finish = redis.register_script(_FINISH)
        self._release = redis.register_script(_RELEASE)
        self._reap = redis.register_script(_REAP)
        self._record_stream = redis.register_script(_RECORD_STREAM)

    @property
    def lease_s(self) -> float:
        return self.lease_ms / 1000

    async def admit(self, message_key: str, conversation_key: str, envelope_json: str) -> Admitted | None:
        """Record a new message durably; None if this message key was seen before (a duplicate)."""
        seq, dispatch = await self._admit(
            keys=[
                keys.message_record(message_key),
                keys.conversation_seq(conversation_key),
                keys.conversation_open(conversation_key),
                keys.LEDGER_OPEN,
                keys.DISPATCHED,
            ],
            args=[message_key, envelope_json, conversation_key, self.lease_ms, self.done_ttl_s],
        )
        return Admitted(int(seq), int(dispatch)) if int(seq) else None

    async def begin(self, message_key: str, token: str, dispatch: int) -> Begun:
        result = await self._begin(
            keys=[keys.message_record(message_key), keys.claim(message_key), keys.STARTED],
            args=[token, self.lease_ms, dispatch],
        )
        return _begun(result)

    async def begin_turn(self, message_key: str, token: str, dispatch: int) -> Begun:
        """``begin``, then, if claimed, the first ``turn`` check in the same script: one round trip, not two."""
        open_prefix, open_suffix = keys.conversation_open("\x00").split("\x00")
        result = await self._begin_turn(
            keys=[keys.message_record(message_key), keys.claim(message_key), keys.STARTED],
            args=[token, self.lease_ms, dispatch, keys.MESSAGE_PREFIX, open_prefix, open_suffix],
        )
        return _begun(result)

    async def renew(self, message_key: str, token: str) -> bool:
        """Extend our lease (or take it back if it lapsed and nobody else took it); False if it is lost."""
        return bool(
            await self._renew(
                keys=[keys.claim(message_key), keys.message_record(message_key)], args=[token, self.lease_ms]
            )
        )

    async def turn(self, message_key: str, conversation_key: str, seq: int) -> int:
        """0 while an earlier message of the conversation is unfinished; then the number of this attempt."""
        return int(
            await self._turn(
                keys=[keys.conversation_open(conversation_key), keys.message_record(message_key)],
                args=[seq, keys.MESSAGE_PREFIX],
            )
        )

    def exhausted(self, attempt: int) -> bool:
        """Handling began ``max_attempts`` times before and never finished: its workers died each time."""
        return attempt > self.max_attempts

    async def commit(self, message_key: str, token: str) -> Commit:
        """The last check before egress: are we still the one to answer?"""
        result = await self._commit(
            keys=[keys.message_record(message_key), keys.claim(message_key)], args=[token, self.lease_ms]
        )
        return Commit(_text(result))

    async def finish(self, message_key: str, conversation_key: str, token: str, outcome: str) -> bool:
        """Record the outcome, release the conversation's next message; False if it was already finished."""
        return bool(
            await self._finish(
                keys=[
                    keys.message_record(message_key),
                    keys.claim(message_key),
                    keys.conversation_open(conversation_key),
                    keys.LEDGER_OPEN,
                ],
                args=[token, outcome, self.done_ttl_s, message_key],
            )
        )

    async def release(self, message_key: str, token: str, delay_s: float) -> bool:
        """Give the message back to be dispatched again in ``delay_s`` (a retryable failure)."""
        return bool(
            await self._release(
                keys=[keys.message_record(message_key), keys.claim(message_key), keys.LEDGER_OPEN],
                args=[token, int(delay_s * 1000), message_key],
            )
        )

    async def record_stream(self, message_key: str, token: str, handle: str) -> bool:
        """Keep the platform handle of the reply being streamed (False: we no longer hold the message)."""
        return bool(
            await self._record_stream(
                keys=[keys.message_record(message_key), keys.claim(message_key)], args=[token, handle]
            )
        )

    async def stream_handle(self, message_key: str) -> str:
        """The handle an earlier attempt recorded while streaming this message's reply ("" if none)."""
        return _text(await self.redis.hget(keys.message_record(message_key), "stream"))

    async def reap(self, limit: int = 200) -> list[tuple[str, int]]:
        """The (message key, dispatch number) pairs to put on the queue again now."""
        flat = await self._reap(
            keys=[keys.LEDGER_OPEN, keys.DISPATCHED, keys.STARTED, self.queue],
            args=[self.lease_ms, limit, keys.MESSAGE_PREFIX, keys.CLAIM_PREFIX],
        )
        return [(_text(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]

    async def stats(self) -> LedgerStats:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(keys.LEDGER_OPEN)
            pipe.get(keys.DISPATCHED)
            pipe.get(keys.STARTED)
            opened, dispatched, started = await pipe.execute()
        return LedgerStats(int(opened), int(dispatched or 0), int(started or 0))
