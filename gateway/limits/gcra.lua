-- Shared by ratelimit.lua and guard.lua (concatenated in front of them by gateway/limits/scripts.py).
--
-- GCRA (the generic cell rate algorithm: a token bucket stored as one timestamp). Each bucket key
-- holds its "theoretical arrival time" in ms: one key per limit, O(1) memory, an exact retry-after,
-- and no double burst at window boundaries as fixed windows allow. Keys are read once per call and
-- written once at the end, so a batch of decisions sharing the platform and global buckets costs
-- one GET and one SET for those buckets, not one per decision.

local tats, dirty = {}, {}

local function now_ms(arg)
  if arg ~= nil and arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function tat_of(key)
  local tat = tats[key]
  if tat == nil then
    tat = tonumber(redis.call('GET', key) or '0')
    tats[key] = tat
  end
  return tat
end

-- keys[i] is the bucket of specs[i] = {amount, period_ms}. All buckets are checked first and spent
-- only when every one allows, so a refused message costs nothing. Returns the index of the limit that
-- refuses longest (0 = allowed) and its retry-after in ms.
local function gcra_check(keys, specs, now)
  local new_tats = {}
  local worst, worst_retry = 0, 0
  for i = 1, #keys do
    local amount, period = specs[i][1], specs[i][2]
    local tat = tat_of(keys[i])
    if tat < now then tat = now end
    local new_tat = tat + period / amount
    local allow_at = new_tat - period
    if allow_at > now and allow_at - now > worst_retry then worst, worst_retry = i, allow_at - now end
    new_tats[i] = new_tat
  end
  if worst > 0 then return worst, worst_retry end
  for i = 1, #keys do
    tats[keys[i]] = new_tats[i]
    dirty[keys[i]] = true
  end
  return 0, 0
end

local function gcra_commit(now)
  for key in pairs(dirty) do
    redis.call('SET', key, string.format('%.3f', tats[key]), 'PX', math.ceil(tats[key] - now) + 1)
  end
end

-- At most one notice per user and limit per window: the first refusal stores when its window ends,
-- later ones find it. The value (not only the TTL) carries the end, so a caller-supplied clock agrees.
local function notice_once(bucket, user, now, period)
  local key = bucket .. ':notice:' .. user
  local ends = tonumber(redis.call('GET', key) or '0')
  if ends > now then return 0 end
  redis.call('SET', key, string.format('%.0f', now + period), 'PX', math.ceil(period))
  return 1
end

local function read_specs(argv, first, count)
  local specs = {}
  for i = 1, count do
    specs[i] = {tonumber(argv[first + 2 * (i - 1)]), tonumber(argv[first + 2 * (i - 1) + 1])}
  end
  return specs
end
