-- Enqueue messages on one queue and ring its doorbell, in one call: for each message
-- exactly what Dramatiq's "enqueue" does (dramatiq/brokers/redis/dispatch.lua),
-- without its heartbeat (a sender holds no messages), then one PUBLISH.
--
-- A message sent with an id of the caller's (``jobs.trigger(..., id=...)``) names its
-- id's key: it is enqueued only if it takes that key (SET NX), in this same call, so
-- two senders of one id enqueue one job whatever their timing. The key outlives the
-- job by the retention period (set when the job ends, see the consumer).
--
-- KEYS[1]: $namespace:$queue_name       (message ids, oldest first)
-- KEYS[2]: $namespace:$queue_name.msgs  (message bodies)
-- ARGV[1]: the doorbell channel
-- ARGV[2]: the queue name, as the doorbell rings it
-- ARGV[3..]: message id, message data, id key ("" for none), message id, ...
-- Returns the message ids not enqueued: their id's key was taken already.

local skipped = {}
for i = 3, #ARGV, 3 do
    local id_key = ARGV[i + 2]
    if id_key == "" or redis.call("set", id_key, ARGV[i], "NX") then
        redis.call("hset", KEYS[2], ARGV[i], ARGV[i + 1])
        redis.call("rpush", KEYS[1], ARGV[i])
    else
        skipped[#skipped + 1] = ARGV[i]
    end
end
if #skipped < (#ARGV - 2) / 3 then
    redis.call("publish", ARGV[1], ARGV[2])
end
return skipped
