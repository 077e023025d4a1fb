-- +goose Up
CREATE SCHEMA IF NOT EXISTS forum;

-- forums: the weekly government–enterprise forum (亲清直通车·政企恳谈会).
-- The row is the lock every seat decision takes (SELECT … FOR UPDATE), so
-- confirmed seats never pass capacity whatever the concurrency.
CREATE TABLE forum.forums (
    forum_id               text PRIMARY KEY,
    forum_date             date        NOT NULL,
    theme                  text        NOT NULL,
    host_leader            text        NOT NULL,
    venue                  text        NOT NULL,
    county                 text        NOT NULL,
    capacity               int         NOT NULL CHECK (capacity > 0),
    reserved_for_nominated int         NOT NULL CHECK (reserved_for_nominated >= 0 AND reserved_for_nominated <= capacity),
    signup_deadline        timestamptz NOT NULL,
    scheduled_at           timestamptz NOT NULL,
    closed_at              timestamptz,
    roster_key             text
);
CREATE INDEX forums_open_by_deadline ON forum.forums (signup_deadline) WHERE closed_at IS NULL;

CREATE TABLE forum.signups (
    signup_id        text PRIMARY KEY,
    forum_id         text        NOT NULL REFERENCES forum.forums,
    seq              bigint GENERATED ALWAYS AS IDENTITY,
    uscc             text        NOT NULL,
    enterprise_name  text        NOT NULL,
    county           text        NOT NULL,
    contact_name     text        NOT NULL,
    contact_phone    text        NOT NULL,
    mode             text        NOT NULL CHECK (mode IN ('self', 'nominated')),
    nominated_by     text,
    topic            text        NOT NULL,
    problems         jsonb       NOT NULL DEFAULT '[]',
    documents        jsonb       NOT NULL DEFAULT '[]',
    status           text        NOT NULL CHECK (status IN ('confirmed', 'waitlisted', 'cancelled')),
    requested_at     timestamptz NOT NULL,
    confirmed_at     timestamptz,
    cancelled_at     timestamptz
);
-- One live signup per enterprise per forum; a cancelled one may sign up again.
CREATE UNIQUE INDEX signups_one_per_enterprise ON forum.signups (forum_id, uscc) WHERE status <> 'cancelled';
CREATE INDEX signups_waitlist ON forum.signups (forum_id, seq) WHERE status = 'waitlisted';
CREATE INDEX signups_by_forum ON forum.signups (forum_id, seq);

-- +goose Down
DROP SCHEMA forum CASCADE;
