-- Take a waiting message out of its queue, its schedule or its delay queue, if no
-- worker has fetched it yet (a fetched message is in a worker's ack set, not here).
-- A job sent with an id of the caller's ends here: its id's key expires after the
-- retention period, as when a worker ends a job.
--
-- KEYS[1]: $namespace:$queue_name          KEYS[2]: $namespace:$queue_name.msgs
-- KEYS[3]: $namespace:$queue_name.DQ       KEYS[4]: $namespace:$queue_name.DQ.msgs
-- KEYS[5]: $namespace:$queue_name.delayed
-- ARGV[1]: the message's Redis id
-- ARGV[2]: the prefix of id keys           ARGV[3]: their time to live once ended, in ms
-- Returns 1 when the message was taken out, 0 when it was not waiting there.

local function ended(body)
    local ok, message = pcall(cjson.decode, body)
    if ok and type(message) == "table" and type(message.options) == "table"
        and message.options.deduplicate and type(message.message_id) == "string" then
        redis.call("pexpire", ARGV[2] .. message.message_id, tonumber(ARGV[3]))
    end
end

if redis.call("zrem", KEYS[5], ARGV[1]) == 1 then
    ended(redis.call("hget", KEYS[2], ARGV[1]) or "")
    redis.call("hdel", KEYS[2], ARGV[1])
    return 1
end
for i = 1, 3, 2 do
    if redis.call("lrem", KEYS[i], 1, ARGV[1]) > 0 then
        ended(redis.call("hget", KEYS[i + 1], ARGV[1]) or "")
        redis.call("hdel", KEYS[i + 1], ARGV[1])
        return 1
    end
end
return 0
