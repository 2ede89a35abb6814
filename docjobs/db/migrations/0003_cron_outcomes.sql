-- Cron firings: who fired each slot, and what became of it. A slot's row is
-- written by the scheduler that fires it, or by the worker that first receives a
-- firing sent without one (periodiq); its job_id is the only message that may run.

ALTER TABLE cron_run
    ADD COLUMN fired_by    text,
    ADD COLUMN status      text NOT NULL DEFAULT 'fired'
                           CHECK (status IN ('fired', 'running', 'succeeded', 'failed', 'late')),
    ADD COLUMN started_at  timestamptz,
    ADD COLUMN finished_at timestamptz,
    ADD COLUMN error       text;

-- Retention deletes by age across schedules.
CREATE INDEX cron_run_created ON cron_run (created_at);
