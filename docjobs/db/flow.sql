-- Flow control on PostgreSQL (docjobs.flow): concurrency slots, throttle and rate-limit
-- windows, debounced sends. Block format as in queries.sql; only docjobs.db.flow reads them.

-- flow_lock --
-- Serialise the takers of one (job, key) until the transaction ends, so the count that
-- follows, in a statement of its own (a snapshot taken after the lock), is exact.
SELECT pg_advisory_xact_lock(hashtextextended(%(job)s || E'\n' || %(key)s, 0));

-- flow_slot_take --
-- Take a slot for holder if fewer than limit live slots are held by others (the lock is held);
-- a holder taking its slot again (a redelivery) keeps it. No row back: none is free. A slot
-- counts while its holder runs: one whose job ended, or was put back by the rescuer, is stale
-- (its release was lost: a worker killed, or the database down when the job ended).
INSERT INTO flow_slot (job, key, holder, expires_at)
SELECT %(job)s, %(key)s, %(holder)s, now() + %(ttl_s)s * interval '1 second'
WHERE (SELECT count(*) FROM flow_slot AS slot
       WHERE slot.job = %(job)s AND slot.key = %(key)s AND slot.holder <> %(holder)s
         AND slot.expires_at > now()
         AND EXISTS (SELECT 1 FROM background_job AS held
                     WHERE held.id = slot.holder AND held.status = 'PROCESSING')) < %(limit)s
ON CONFLICT (job, key, holder) DO UPDATE SET expires_at = excluded.expires_at
RETURNING holder;

-- flow_slot_release --
-- Free a holder's slot.
DELETE FROM flow_slot WHERE job = %(job)s AND key = %(key)s AND holder = %(holder)s;

-- flow_window_take --
-- Count one run in the current window of period_s seconds if it has fewer than limit; one row
-- back either way: taken, and the seconds until the window ends.
WITH now_window AS (
    SELECT to_timestamp(floor(extract(epoch FROM now()) / %(period_s)s) * %(period_s)s) AS start
), counted AS (
    INSERT INTO flow_window AS w (job, kind, key, window_start, runs, expires_at)
    SELECT %(job)s, %(kind)s, %(key)s, start, 1, start + 2 * %(period_s)s * interval '1 second'
    FROM now_window
    ON CONFLICT (job, kind, key, window_start) DO UPDATE SET runs = w.runs + 1
    WHERE w.runs < %(limit)s
    RETURNING runs
)
SELECT EXISTS (SELECT 1 FROM counted) AS taken,
       extract(epoch FROM start + %(period_s)s * interval '1 second' - now())::float8 AS wait_s
FROM now_window;

-- flow_debounce_note --
-- A debounced job is about to be sent: it is the key's latest, unless a send of a later
-- millisecond was noted first (notes from several senders may arrive out of order).
INSERT INTO flow_debounce AS d (job, key, latest, latest_ms, expires_at)
VALUES (%(job)s, %(key)s, %(latest)s, %(latest_ms)s, now() + %(ttl_s)s * interval '1 second')
ON CONFLICT (job, key) DO UPDATE SET latest = excluded.latest, latest_ms = excluded.latest_ms,
                                     expires_at = excluded.expires_at
WHERE excluded.latest_ms >= d.latest_ms;

-- flow_debounce_superseded --
-- Whether another send of the key, noted after this job's own note, exists (its row is there:
-- a send whose transaction rolled back, or failed, left a note naming a job that never was).
SELECT EXISTS (
    SELECT 1 FROM flow_debounce AS d JOIN background_job AS j ON j.id = d.latest
    WHERE d.job = %(job)s AND d.key = %(key)s AND d.latest <> %(job_id)s AND d.latest_ms >= %(sent_ms)s
) AS superseded;

-- flow_expire --
-- Delete what has expired, at most limit rows of each table.
WITH slots AS (
    DELETE FROM flow_slot WHERE ctid IN (SELECT ctid FROM flow_slot WHERE expires_at < now() LIMIT %(limit)s)
    RETURNING 1
), windows AS (
    DELETE FROM flow_window
    WHERE ctid IN (SELECT ctid FROM flow_window WHERE expires_at < now() LIMIT %(limit)s)
    RETURNING 1
), debounces AS (
    DELETE FROM flow_debounce
    WHERE ctid IN (SELECT ctid FROM flow_debounce WHERE expires_at < now() LIMIT %(limit)s)
    RETURNING 1
)
SELECT (SELECT count(*) FROM slots) + (SELECT count(*) FROM windows) + (SELECT count(*) FROM debounces)
    AS deleted;
