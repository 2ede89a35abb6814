-- Liveness checks of `docjobs health`, in the same block format as queries.sql.
-- Only docjobs.health reads them.

-- health_worker_on_host --
-- This host's worker processes and the age of the freshest heartbeat among them.
SELECT count(*) AS processes,
       extract(epoch FROM coalesce(%(now)s, now()) - max(heartbeat_at)) AS freshest_age_seconds
FROM worker
WHERE hostname = %(hostname)s;
