-- Take one of a key's concurrency slots for a holder, if fewer than the limit are held by
-- others. Slots are members of a sorted set scored by when they expire (a worker killed
-- while holding one frees it then).
--
-- KEYS[1]: $namespace:flow:slot:$job:$key
-- ARGV[1]: the holder (a job id)    ARGV[2]: the limit    ARGV[3]: the slot's lifetime, in ms
-- Returns 1 when taken (or held already), 0 when every slot is held by others.

local now = redis.call("time")
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call("zremrangebyscore", KEYS[1], "-inf", now_ms)
if redis.call("zscore", KEYS[1], ARGV[1]) == false and redis.call("zcard", KEYS[1]) >= tonumber(ARGV[2]) then
    return 0
end
redis.call("zadd", KEYS[1], now_ms + ttl, ARGV[1])
redis.call("pexpire", KEYS[1], ttl)
return 1
