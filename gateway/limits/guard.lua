-- One round trip for a whole admission decision: block list, mute, flood, spam, then rate limits.
-- KEYS[1] blocked users hash, KEYS[2] blocked conversations hash, KEYS[3] mute key, KEYS[4] flood counter,
-- KEYS[5] spam set of this user+text ('' when the text is too short to judge), KEYS[6..] bucket keys.
-- ARGV: [1] now ms or '', [2] user subject, [3] conversation subject (also the spam set's member).
-- CONF (the configuration, written into the script by gateway/limits/scripts.py): [1] flood threshold,
-- [2] flood window ms, [3] mute ms, [4] mute reason, [5] spam K, [6] spam window ms,
-- [7..] amount, period_ms per bucket.
-- Returns {code, detail, retry_ms, notify, hit}: code 0 allow, 1 user blocked, 2 conversation blocked,
-- 3 muted, 4 flood (muted now), 5 spam, 6 rate limited.
local now = now_ms(ARGV[1])

local entry = redis.call('HGET', KEYS[1], ARGV[2])
if entry then return {1, entry, 0, 0, 0} end
entry = redis.call('HGET', KEYS[2], ARGV[3])
if entry then return {2, entry, 0, 0, 0} end

local muted = redis.call('GET', KEYS[3])
if muted then return {3, muted, redis.call('PTTL', KEYS[3]), 0, 0} end

local threshold = CONF[1]
if threshold > 0 then
  local seen = redis.call('INCR', KEYS[4])
  if seen == 1 then redis.call('PEXPIRE', KEYS[4], CONF[2]) end
  if seen > threshold then
    redis.call('SET', KEYS[3], CONF[4], 'PX', CONF[3])
    redis.call('DEL', KEYS[4])
    return {4, CONF[4], CONF[3], 1, 0}
  end
end

if KEYS[5] ~= '' then
  local window = CONF[6]
  redis.call('ZADD', KEYS[5], now, ARGV[3])
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - window)
  redis.call('PEXPIRE', KEYS[5], math.ceil(window))
  if redis.call('ZCARD', KEYS[5]) >= CONF[5] then return {5, 'spam', 0, 0, 0} end
end

local count = #KEYS - 5
if count > 0 then
  local keys = {}
  for i = 1, count do keys[i] = KEYS[5 + i] end
  local specs = read_specs(CONF, 7, count)
  local hit, retry = gcra_check(keys, specs, now)
  if hit > 0 then
    return {6, '', math.ceil(retry), notice_once(keys[hit], ARGV[2], now, specs[hit][2]), hit}
  end
  gcra_commit(now)
end
return {0, '', 0, 0, 0}
