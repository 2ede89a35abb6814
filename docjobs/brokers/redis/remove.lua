-- Take a waiting message out of its queue, its schedule or its delay queue, if no
-- worker has fetched it yet (a fetched message is in a worker's ack set, not here).
--
-- KEYS[1]: $namespace:$queue_name          KEYS[2]: $namespace:$queue_name.msgs
-- KEYS[3]: $namespace:$queue_name.DQ       KEYS[4]: $namespace:$queue_name.DQ.msgs
-- KEYS[5]: $namespace:$queue_name.delayed
-- ARGV[1]: the message's Redis id
-- Returns 1 when the message was taken out, 0 when it was not waiting there.

if redis.call("zrem", KEYS[5], ARGV[1]) == 1 then
    redis.call("hdel", KEYS[2], ARGV[1])
    return 1
end
for i = 1, 3, 2 do
    if redis.call("lrem", KEYS[i], 1, ARGV[1]) > 0 then
        redis.call("hdel", KEYS[i + 1], ARGV[1])
        return 1
    end
end
return 0
