-- Initial schema: everything the product needs to survive a restart at any step.
-- Times are UTC unix seconds (REAL); Discord ids are INTEGER snowflakes.

CREATE TABLE jobs (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id            INTEGER NOT NULL,
    channel_id          INTEGER NOT NULL,
    user_id             INTEGER NOT NULL,
    state               TEXT    NOT NULL CHECK (state IN (
                            'received', 'fetching', 'reserved', 'rehosted', 'submitting',
                            'submitted', 'submission_unknown', 'downloading', 'archived',
                            'delivered', 'failed', 'rejected')),
    model               TEXT    NOT NULL,
    prompt              TEXT    NOT NULL,
    keep_audio          INTEGER NOT NULL DEFAULT 1,
    source              TEXT    NOT NULL,           -- JSON: where each input came from
    parent_job_id       INTEGER REFERENCES jobs(id),
    duration_s          REAL,
    billed_seconds      INTEGER,
    credits             REAL,
    provider_task_id    TEXT UNIQUE,
    provider_status     TEXT,
    progress            INTEGER NOT NULL DEFAULT 0,
    estimated_time_s    REAL,
    callback_secret     TEXT    NOT NULL,
    result_url          TEXT,
    status_message_id   INTEGER,
    thread_id           INTEGER,
    delivered_message_id INTEGER,
    error_code          TEXT,
    error_message       TEXT,
    created_at          REAL    NOT NULL,
    updated_at          REAL    NOT NULL,
    submitted_at        REAL,
    completed_at        REAL,
    delivered_at        REAL,
    ended_at            REAL,
    next_poll_at        REAL,
    poll_count          INTEGER NOT NULL DEFAULT 0,
    download_attempts   INTEGER NOT NULL DEFAULT 0,
    delivery_attempts   INTEGER NOT NULL DEFAULT 0,
    next_delivery_at    REAL
);
CREATE INDEX jobs_by_user ON jobs (guild_id, user_id, created_at);
CREATE INDEX jobs_by_state ON jobs (state);
CREATE INDEX jobs_due_poll ON jobs (next_poll_at) WHERE next_poll_at IS NOT NULL;
CREATE INDEX jobs_due_delivery ON jobs (next_delivery_at) WHERE next_delivery_at IS NOT NULL;

-- Append-only history of every state transition.
CREATE TABLE job_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id      INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    at          REAL    NOT NULL,
    from_state  TEXT,
    to_state    TEXT    NOT NULL,
    detail      TEXT
);
CREATE INDEX job_events_by_job ON job_events (job_id, id);

-- Billed seconds, signed: reserve +n, settle 0 or a correction, refund/release -n,
-- grant adds allowance (counted separately), reset hides earlier usage in its window.
CREATE TABLE quota_ledger (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    job_id      INTEGER REFERENCES jobs(id),
    kind        TEXT    NOT NULL CHECK (kind IN ('reserve', 'settle', 'refund', 'release',
                                                 'grant', 'reset')),
    seconds     INTEGER NOT NULL,
    at          REAL    NOT NULL,
    actor_id    INTEGER,
    note        TEXT
);
CREATE INDEX quota_by_user ON quota_ledger (guild_id, user_id, at);
CREATE INDEX quota_by_guild ON quota_ledger (guild_id, at);
-- A job is reserved once and ended (refund/release/settle) at most once.
CREATE UNIQUE INDEX quota_one_entry_per_job_kind ON quota_ledger (job_id, kind)
    WHERE job_id IS NOT NULL;

CREATE TABLE guild_settings (
    guild_id            INTEGER PRIMARY KEY,
    daily_seconds       INTEGER,
    monthly_seconds     INTEGER,
    max_concurrent      INTEGER,
    cooldown_s          INTEGER,
    monthly_budget      INTEGER,
    paused              INTEGER NOT NULL DEFAULT 0,
    pause_reason        TEXT,
    moderator_role_id   INTEGER,
    log_channel_id      INTEGER,
    updated_at          REAL    NOT NULL
);

CREATE TABLE user_limits (
    guild_id        INTEGER NOT NULL,
    user_id         INTEGER NOT NULL,
    daily_seconds   INTEGER,
    monthly_seconds INTEGER,
    updated_at      REAL    NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

CREATE TABLE role_limits (
    guild_id        INTEGER NOT NULL,
    role_id         INTEGER NOT NULL,
    daily_seconds   INTEGER,
    monthly_seconds INTEGER,
    updated_at      REAL    NOT NULL,
    PRIMARY KEY (guild_id, role_id)
);

CREATE TABLE blocked_users (
    guild_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    reason      TEXT,
    blocked_by  INTEGER NOT NULL,
    at          REAL    NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

CREATE TABLE channel_rules (
    guild_id    INTEGER NOT NULL,
    channel_id  INTEGER NOT NULL,
    rule        TEXT    NOT NULL CHECK (rule IN ('allow', 'deny')),
    updated_at  REAL    NOT NULL,
    PRIMARY KEY (guild_id, channel_id)
);

-- Files the bot serves or keeps: rehosted inputs and archived results.
CREATE TABLE media_objects (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    token         TEXT    NOT NULL UNIQUE,
    job_id        INTEGER REFERENCES jobs(id),
    role          TEXT    NOT NULL CHECK (role IN ('input_video', 'input_image', 'result')),
    position      INTEGER NOT NULL DEFAULT 0,
    relative_path TEXT    NOT NULL UNIQUE,
    filename      TEXT    NOT NULL,
    content_type  TEXT    NOT NULL,
    size_bytes    INTEGER NOT NULL,
    sha256        TEXT    NOT NULL,
    created_at    REAL    NOT NULL,
    expires_at    REAL,
    deleted_at    REAL
);
CREATE INDEX media_by_job ON media_objects (job_id, role, position);
CREATE INDEX media_by_expiry ON media_objects (expires_at) WHERE deleted_at IS NULL;

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id    INTEGER NOT NULL,
    actor_id    INTEGER NOT NULL,
    action      TEXT    NOT NULL,
    target      TEXT,
    detail      TEXT,
    at          REAL    NOT NULL
);
CREATE INDEX audit_by_guild ON audit_log (guild_id, id);
