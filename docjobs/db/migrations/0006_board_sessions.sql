-- Board sessions held by the server (issue 17): signing out, a password change,
-- losing ADMIN or being disabled ends a session everywhere its cookie was copied to.

CREATE TABLE board_session (
    -- sha256 of the random token the cookie carries; the token itself is not stored.
    token_hash           bytea PRIMARY KEY,
    user_id              bigint NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
    -- sha256 of the user's password hash at sign-in: a new password, set anywhere, ends the session.
    password_fingerprint bytea NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    expires_at           timestamptz NOT NULL
);

CREATE INDEX board_session_user ON board_session (user_id, created_at);
CREATE INDEX board_session_expires ON board_session (expires_at);
