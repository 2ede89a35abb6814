-- Trim moved entries off the job history journal and renew the lease, or release
-- it, only while the caller still holds the lease (its token is the lease's value).
--
-- KEYS[1]: $namespace:__history__        KEYS[2]: $namespace:__history__.lease
-- ARGV[1]: the caller's token            ARGV[2]: how many entries to trim off the head
-- ARGV[3]: the lease's new time to live, in ms
-- ARGV[4]: (optional) "release": give the lease up instead
-- Returns 1 when done, 0 when the lease is not the caller's.

if redis.call("get", KEYS[2]) ~= ARGV[1] then
    return 0
end
if ARGV[4] == "release" then
    redis.call("del", KEYS[2])
    return 1
end
redis.call("ltrim", KEYS[1], tonumber(ARGV[2]), -1)
redis.call("pexpire", KEYS[2], tonumber(ARGV[3]))
return 1
