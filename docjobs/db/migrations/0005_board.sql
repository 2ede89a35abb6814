-- The admin board: board passwords for users (argon2id hashes), and the audit log
-- of every action taken on the board.

ALTER TABLE "user" ADD COLUMN password_hash text;

CREATE TABLE board_audit (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    -- Who: a user's email, "token", or "development".
    actor   text NOT NULL,
    action  text NOT NULL,
    target  text,
    detail  jsonb NOT NULL DEFAULT '{}'
);
