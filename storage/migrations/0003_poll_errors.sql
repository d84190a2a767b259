-- Poll errors back off by their own count (issue 11): `poll_errors` counts the consecutive
-- failed polls of a job and a good answer resets it; `not_found_since` is when the current
-- run of "task not found" answers began, so only a persistent 404 reaches a moderator.
ALTER TABLE jobs ADD COLUMN poll_errors INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN not_found_since REAL;
