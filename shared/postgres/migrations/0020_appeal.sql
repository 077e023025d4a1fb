-- +goose Up
CREATE SCHEMA IF NOT EXISTS appeal;

-- appeals: one row per appeal (诉求) in its closed loop — handed to a
-- department within 2 working days (交办), answered within 10, followed up
-- (回访). The row holds the current state; appeal.history holds every
-- transition.
CREATE TABLE appeal.appeals (
    appeal_id        text PRIMARY KEY,
    uscc             text        NOT NULL,
    enterprise_name  text        NOT NULL,
    county           text        NOT NULL,
    title            text        NOT NULL,
    detail           text        NOT NULL DEFAULT '',
    category         text        NOT NULL DEFAULT '',
    channel          text        NOT NULL CHECK (channel IN ('forum', 'portal', 'hotline', 'visit')),
    forum_id         text,
    signup_id        text,
    status           text        NOT NULL CHECK (status IN ('assigned', 'accepted', 'replied', 'closed')),
    -- department: the current assignee; routed_to: what the rules chose at receipt.
    department       text        NOT NULL,
    routed_to        text        NOT NULL,
    received_at      timestamptz NOT NULL,
    assign_due       timestamptz NOT NULL,
    -- first_reply_due is the promise made at receipt (10 working days);
    -- reply_due moves on when an unsatisfied revisit reopens the appeal.
    first_reply_due  timestamptz NOT NULL,
    reply_due        timestamptz NOT NULL,
    revisit_due      timestamptz,
    reopened         int         NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL,
    -- the event that created the appeal
    source           text        NOT NULL,
    event_id         text        NOT NULL
);
-- The deadline check reads only open appeals past a due time: one partial
-- index per stage, on the due time, over the appeals for which that stage
-- is still open. Closed appeals are in none of them, so the check costs
-- what the overdue appeals cost, not what every appeal ever received does.
CREATE INDEX appeals_assign_open ON appeal.appeals (assign_due) WHERE status = 'assigned';
CREATE INDEX appeals_reply_open ON appeal.appeals (reply_due) WHERE status IN ('assigned', 'accepted');
CREATE INDEX appeals_revisit_open ON appeal.appeals (revisit_due) WHERE status = 'replied';
-- The monthly review reads the appeals received in one month.
CREATE INDEX appeals_received ON appeal.appeals (received_at);

-- history: every transition, who (actor), when (at: the event time), what
-- (action, from/to status, the assignee after it, and the details such as
-- the return reason, the reply text or the revisit verdict), and which
-- event caused it.
CREATE TABLE appeal.history (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    appeal_id    text        NOT NULL REFERENCES appeal.appeals ON DELETE CASCADE,
    at           timestamptz NOT NULL,
    action       text        NOT NULL CHECK (action IN ('submitted', 'accepted', 'returned', 'replied', 'revisited')),
    actor        text        NOT NULL,
    from_status  text,
    to_status    text        NOT NULL,
    department   text        NOT NULL,
    satisfaction text CHECK (satisfaction IN ('satisfied', 'basically_satisfied', 'unsatisfied')),
    detail       jsonb       NOT NULL DEFAULT '{}',
    source       text        NOT NULL,
    event_id     text        NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX history_by_appeal ON appeal.history (appeal_id, at, seq);

-- overdue_announcements: each (appeal, stage, level) of the escalation
-- ladder is announced once. Two checks at the same moment both try to
-- insert; the primary key lets one win (INSERT … ON CONFLICT DO NOTHING),
-- and only the winner queues the cn.huzhou.appeal.overdue follow-up.
CREATE TABLE appeal.overdue_announcements (
    appeal_id            text        NOT NULL REFERENCES appeal.appeals ON DELETE CASCADE,
    stage                text        NOT NULL CHECK (stage IN ('assign', 'reply', 'revisit')),
    level                text        NOT NULL CHECK (level IN ('reminder', 'supervision', 'exposure')),
    department           text        NOT NULL,
    due_at               timestamptz NOT NULL,
    working_days_overdue int         NOT NULL,
    as_of                timestamptz NOT NULL,
    source               text        NOT NULL,
    event_id             text        NOT NULL,
    announced_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (appeal_id, stage, level)
);

-- reviews: the published monthly review (营商环境月评议) of each month.
-- review_json is the exact review.json document; a later run for the same
-- month publishes it again unchanged.
CREATE TABLE appeal.reviews (
    period       text        PRIMARY KEY CHECK (period ~ '^[0-9]{4}-[0-9]{2}$'),
    as_of        timestamptz NOT NULL,
    review_json  text        NOT NULL,
    source       text        NOT NULL,
    event_id     text        NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP SCHEMA appeal CASCADE;
