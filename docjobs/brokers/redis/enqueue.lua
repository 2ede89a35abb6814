-- Enqueue messages on one queue and ring its doorbell, in one call: for each message
-- exactly what Dramatiq's "enqueue" does (dramatiq/brokers/redis/dispatch.lua),
-- without its heartbeat (a sender holds no messages), then one PUBLISH.
--
-- KEYS[1]: $namespace:$queue_name       (message ids, oldest first)
-- KEYS[2]: $namespace:$queue_name.msgs  (message bodies)
-- ARGV[1]: the doorbell channel
-- ARGV[2]: the queue name, as the doorbell rings it
-- ARGV[3..]: message id, message data, message id, message data, ...
-- Returns how many messages were enqueued.

for i = 3, #ARGV, 2 do
    redis.call("hset", KEYS[2], ARGV[i], ARGV[i + 1])
    redis.call("rpush", KEYS[1], ARGV[i])
end
redis.call("publish", ARGV[1], ARGV[2])
return (#ARGV - 2) / 2
