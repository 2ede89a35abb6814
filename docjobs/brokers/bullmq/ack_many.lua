-- Acknowledge many fetched messages of one queue in one call: each id leaves this
-- worker's ack set and its body is deleted, exactly as Dramatiq's own "ack" does
-- for one id (dramatiq/brokers/redis/dispatch.lua).
--
-- KEYS[1]: $namespace:__acks__.$broker_id.$queue_name  (this worker's fetched ids)
-- KEYS[2]: $namespace:$queue_name.msgs                  (message bodies)
-- ARGV:    the redis_message_ids to acknowledge
-- Returns how many were still held (and are now acknowledged).

local acknowledged = 0
for i = 1, #ARGV do
    if redis.call("srem", KEYS[1], ARGV[i]) > 0 then
        redis.call("hdel", KEYS[2], ARGV[i])
        acknowledged = acknowledged + 1
    end
end
return acknowledged
