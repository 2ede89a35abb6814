-- Schedule delayed messages of one queue and ring its delay queue's doorbell, in one
-- call. A delayed message waits in a sorted set scored by its due time (epoch ms),
-- its body already in the queue's hash, so moving it to the queue when due (or when
-- promoted on the board) is one ZREM and one RPUSH, and no worker holds it meanwhile.
-- A message naming its id's key is scheduled only if it takes the key (see enqueue.lua).
--
-- KEYS[1]: $namespace:$queue_name.delayed  (message ids by due time)
-- KEYS[2]: $namespace:$queue_name.msgs     (message bodies)
-- ARGV[1]: the doorbell channel
-- ARGV[2]: the delay queue's name, as the doorbell rings it
-- ARGV[3..]: message id, message data, due time, id key ("" for none), message id, ...
-- Returns the message ids not scheduled: their id's key was taken already.

local skipped = {}
for i = 3, #ARGV, 4 do
    local id_key = ARGV[i + 3]
    if id_key == "" or redis.call("set", id_key, ARGV[i], "NX") then
        redis.call("hset", KEYS[2], ARGV[i], ARGV[i + 1])
        redis.call("zadd", KEYS[1], ARGV[i + 2], ARGV[i])
    else
        skipped[#skipped + 1] = ARGV[i]
    end
end
if #skipped < (#ARGV - 2) / 4 then
    redis.call("publish", ARGV[1], ARGV[2])
end
return skipped
