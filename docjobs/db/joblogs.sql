-- Queries of the job log store (docjobs/db/joblogs.py): the lines and progress actors report.

-- job_log_append --
-- Append a line to a job's log in one statement: count it on the job's progress row (made on
-- first use; its lock orders a job's lines), keep the newest %(max_lines)s by dropping the one
-- that falls out, and insert it.
WITH head AS (
    INSERT INTO background_job_progress AS head (job_id, lines) VALUES (%(job_id)s, 1)
    ON CONFLICT (job_id) DO UPDATE SET lines = head.lines + 1, updated_at = now()
    RETURNING lines
), fallen AS (
    DELETE FROM background_job_log
    WHERE job_id = %(job_id)s AND seq = (SELECT lines FROM head) - %(max_lines)s
)
INSERT INTO background_job_log (job_id, seq, attempt, line)
SELECT %(job_id)s, lines, %(attempt)s, %(line)s FROM head;

-- job_progress_set --
-- Set a job's progress (JSON text: a number or an object).
INSERT INTO background_job_progress AS head (job_id, progress) VALUES (%(job_id)s, %(progress)s::jsonb)
ON CONFLICT (job_id) DO UPDATE SET progress = EXCLUDED.progress, updated_at = now();

-- job_log_read --
-- A job's progress, its count of lines written, and its newest %(limit)s lines, oldest first
-- (one row per line; a job with progress and no line has one row with a NULL seq).
SELECT head.progress, head.lines AS written, head.updated_at, shown.seq, shown.attempt, shown.at, shown.line
FROM background_job_progress AS head
LEFT JOIN LATERAL (
    SELECT seq, attempt, at, line FROM background_job_log
    WHERE job_id = head.job_id ORDER BY seq DESC LIMIT %(limit)s
) AS shown ON true
WHERE head.job_id = %(job_id)s
ORDER BY shown.seq;
