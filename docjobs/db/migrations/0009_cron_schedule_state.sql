-- Schedules paused on the board (issue 22). Every driver's firing goes through the cron
-- ledger, which reads this row: a slot of a paused schedule is recorded as 'paused' and
-- not run. A slot between paused_at and resumed_at stays skipped after the resume (no
-- replay of what was missed). No row: never paused.

CREATE TABLE cron_schedule_state (
    schedule    text PRIMARY KEY,
    paused      boolean NOT NULL,
    paused_at   timestamptz,
    resumed_at  timestamptz,
    -- Who changed it last: a board user's email, "token", or "development".
    changed_by  text NOT NULL
);

ALTER TABLE cron_run DROP CONSTRAINT cron_run_status_check;
ALTER TABLE cron_run ADD CONSTRAINT cron_run_status_check
    CHECK (status IN ('fired', 'running', 'succeeded', 'failed', 'late', 'paused'));
