-- A batch of decisions (one or many) in one call.
-- KEYS: the distinct bucket keys of the batch.
-- ARGV: [1] now ms ('' = the server clock), [2] S = limits per decision, [3..2+2S] amount, period_ms
-- per limit, then per decision: the user subject and S indexes into KEYS (its bucket for each limit).
-- Returns 4 integers per decision: allowed, index of the refusing limit, retry_after_ms, notify.
local now = now_ms(ARGV[1])
local count = tonumber(ARGV[2])
local specs = read_specs(ARGV, 3, count)
local out = {}
local pos = 3 + 2 * count
while pos <= #ARGV do
  local user = ARGV[pos]
  local keys = {}
  for i = 1, count do keys[i] = KEYS[tonumber(ARGV[pos + i])] end
  pos = pos + count + 1
  local hit, retry = gcra_check(keys, specs, now)
  if hit == 0 then
    out[#out + 1] = 1; out[#out + 1] = 0; out[#out + 1] = 0; out[#out + 1] = 0
  else
    out[#out + 1] = 0; out[#out + 1] = hit; out[#out + 1] = math.ceil(retry)
    out[#out + 1] = notice_once(keys[hit], user, now, specs[hit][2])
  end
end
gcra_commit(now)
return out
