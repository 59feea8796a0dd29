--[[ atomkit fleet_gcra.lua: GCRA rate limiting, one atomic decision per call.
 Shipped with atomkit (share/atomkit/fleet_gcra.lua); <atomkit/fleet.h> runs this exact text, so a
 service in any language that calls it the same way shares keys and semantics with atomkit.

 Call:    EVALSHA <sha1 of this file> 1 <key> <T_us> <burst> <n>
          (EVAL <this text> 1 ... the same; on a NOSCRIPT reply to EVALSHA, send EVAL.)
   KEYS[1]  the bucket's key, atomkit uses <prefix><key> (default prefix "ak:"). It is in KEYS,
            so Redis Cluster routes the call to the key's node.
   ARGV[1]  T_us   emission interval, integer microseconds >= 1: one event per T_us.
            atomkit: T_us = ceil(period_ns / events / 1000) (rounded up: never too fast).
   ARGV[2]  burst  integer >= 1: events admitted at once from a full bucket.
   ARGV[3]  n      integer >= 0: events asked for. 0 asks and writes nothing.
            burst * T_us must not exceed 2^50 (35 years).
 Reply:   an array of six integers, the first five in redis-cell's CL.THROTTLE order:
   [1] limited         0 = allowed (n consumed), 1 = refused (nothing written)
   [2] limit           burst
   [3] remaining       whole events still available after this call
   [4] retry_after_us  -1 if allowed, else microseconds until n could be admitted
                       (-> HTTP Retry-After); never possible when n > burst
   [5] reset_after_us  microseconds until the bucket is full again (-> X-RateLimit-Reset)
   [6] now_us          Redis's TIME of this decision, in microseconds
   (redis-cell reports [4] and [5] in seconds; these are microseconds.)
 Bad arguments: an error reply "ERR atomkit gcra: bad arguments".

 The state: the string value of KEYS[1] is TAT, the theoretical arrival time, in microseconds
 since the Unix epoch on Redis's clock. Admit n at now iff max(TAT, now) + n*T <= now + burst*T;
 then TAT := max(TAT, now) + n*T. The clock is Redis's TIME, read inside the script: every
 client, on every machine, decides on the same clock, so skew between client clocks cannot
 widen the bound. Per key, the admitted events in any window of length W (Redis time) number
 at most burst + floor(W / T).
 Expiry: an admission sets a TTL (SET ... PX, i.e. PEXPIRE) to the moment the bucket is full
 again (TAT); a key that has expired and a full bucket are the same state, so idle keys vanish
 without changing any decision.
 Numbers are Lua doubles: microseconds since 1970 (~2^51) and burst * T_us <= 2^50 stay exact.
]]
if redis.replicate_commands then redis.replicate_commands() end -- Redis < 5: allow TIME, then a write
local T = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
if not T or not burst or not n or T < 1 or burst < 1 or n < 0
   or T ~= math.floor(T) or burst ~= math.floor(burst) or n ~= math.floor(n)
   or burst * T > 1125899906842624 then
  return redis.error_reply('ERR atomkit gcra: bad arguments')
end
local tau = burst * T
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then tat = now end
local new = tat + n * T
if n > burst or new > now + tau then
  return {1, burst, math.floor((now + tau - tat) / T), new - tau - now, tat - now, now}
end
if n > 0 then
  redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', math.ceil((new - now) / 1000))
end
return {0, burst, math.floor((now + tau - new) / T), -1, new - now, now}
