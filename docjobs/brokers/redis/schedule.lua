-- Schedule delayed messages of one queue and ring its delay queue's doorbell, in one
-- call. A delayed message waits in a sorted set scored by its due time (epoch ms),
-- its body already in the queue's hash, so moving it to the queue when due (or when
-- promoted on the board) is one ZREM and one RPUSH, and no worker holds it meanwhile.
--
-- KEYS[1]: $namespace:$queue_name.delayed  (message ids by due time)
-- KEYS[2]: $namespace:$queue_name.msgs     (message bodies)
-- ARGV[1]: the doorbell channel
-- ARGV[2]: the delay queue's name, as the doorbell rings it
-- ARGV[3..]: message id, message data, due time, message id, message data, due time, ...
-- Returns how many messages were scheduled.

for i = 3, #ARGV, 3 do
    redis.call("hset", KEYS[2], ARGV[i], ARGV[i + 1])
    redis.call("zadd", KEYS[1], ARGV[i + 2], ARGV[i])
end
redis.call("publish", ARGV[1], ARGV[2])
return (#ARGV - 2) / 3
