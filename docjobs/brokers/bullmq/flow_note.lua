-- Record a debounced key's latest send ("<sent ms>:<job id>"), unless a send of a later
-- millisecond is recorded: notes from several senders may arrive out of order.
--
-- KEYS[1]: $namespace:flow:debounce:$job:$key
-- ARGV[1]: when the job was sent, ms    ARGV[2]: its job id    ARGV[3]: how long to keep it, ms
-- Returns 1 when recorded, 0 when a later send was.

local current = redis.call("get", KEYS[1])
if current then
    local sent = tonumber(string.match(current, "^(%d+):"))
    if sent and sent > tonumber(ARGV[1]) then
        return 0
    end
end
redis.call("set", KEYS[1], ARGV[1] .. ":" .. ARGV[2], "PX", tonumber(ARGV[3]))
return 1
