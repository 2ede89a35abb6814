-- Move the delayed messages of one queue that are due (or one named message, due or
-- not: a promote) to the end of the queue, and ring its doorbell if any moved.
-- Atomic, so the workers that all run it at a due time move each message once.
--
-- KEYS[1]: $namespace:$queue_name.delayed  KEYS[2]: $namespace:$queue_name
-- ARGV[1]: the doorbell channel            ARGV[2]: the queue's name, as the doorbell rings it
-- ARGV[3]: now (epoch ms)                  ARGV[4]: the most messages to move
-- ARGV[5]: (optional) the one message id to move now
-- Returns {how many moved, the next due time or -1 when none waits}.

local moved = {}
if ARGV[5] then
    if redis.call("zrem", KEYS[1], ARGV[5]) == 1 then
        moved = {ARGV[5]}
    end
else
    moved = redis.call("zrangebyscore", KEYS[1], "-inf", ARGV[3], "LIMIT", 0, tonumber(ARGV[4]))
    if #moved > 0 then
        redis.call("zrem", KEYS[1], unpack(moved))
    end
end
if #moved > 0 then
    redis.call("rpush", KEYS[2], unpack(moved))
    redis.call("publish", ARGV[1], ARGV[2])
end
local next_due = redis.call("zrange", KEYS[1], 0, 0, "WITHSCORES")
if #next_due == 0 then
    return {#moved, -1}
end
return {#moved, tonumber(next_due[2])}
