-- Count one run in the current window of a throttle or rate limit, if it has fewer than
-- the limit. Windows are fixed: they start at multiples of the period since the epoch.
--
-- KEYS[1]: $namespace:flow:$kind:$job:$key (the window's start is appended)
-- ARGV[1]: the limit    ARGV[2]: the period, in ms
-- Returns {1, 0} when counted, {0, ms until the window ends} when it is full.

local now = redis.call("time")
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local period = tonumber(ARGV[2])
local start = now_ms - (now_ms % period)
local key = KEYS[1] .. ":" .. start
local runs = tonumber(redis.call("get", key) or "0")
if runs >= tonumber(ARGV[1]) then
    return {0, start + period - now_ms}
end
redis.call("incr", key)
redis.call("pexpire", key, 2 * period)
return {1, 0}
