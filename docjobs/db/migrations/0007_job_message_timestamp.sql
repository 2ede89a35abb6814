-- The local provider keeps each message's message_timestamp (milliseconds since the
-- epoch, set when the message was built), so Dramatiq's max_age counts from then and
-- not from the insert (issue 19). Rows written before this migration have none: their
-- claim falls back to submitted_at, as before.

ALTER TABLE background_job ADD COLUMN message_ts_ms bigint;
