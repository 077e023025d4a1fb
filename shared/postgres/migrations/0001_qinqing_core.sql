-- +goose Up
CREATE SCHEMA IF NOT EXISTS qinqing;

-- inbox: one row per handled event, keyed by the handling function and the
-- CloudEvents source + id. The
-- reply is stored with it in the transaction that changed the state, so a
-- redelivery answers the same reply and changes nothing.
CREATE TABLE qinqing.inbox (
    function    text        NOT NULL,
    source      text        NOT NULL,
    id          text        NOT NULL,
    type        text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    reply_id    text,
    reply_type  text,
    reply_data  json,
    PRIMARY KEY (function, source, id)
);
CREATE INDEX inbox_received_at ON qinqing.inbox (received_at);

-- outbox: follow-up events written in the same transaction as the state
-- change, delivered to K_SINK by the relay of any running function.
CREATE TABLE qinqing.outbox (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              text        NOT NULL UNIQUE,
    producer        text        NOT NULL,
    source          text        NOT NULL,
    type            text        NOT NULL,
    subject         text,
    data            json        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        int         NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    delivered_at    timestamptz
);
-- Only pending rows are ever scanned by the relay.
CREATE INDEX outbox_pending ON qinqing.outbox (next_attempt_at, seq) WHERE delivered_at IS NULL;

-- calendar_days: the State Council's holiday arrangement. A weekday listed
-- as 'holiday' is not a working day; a weekend day listed as 'workday' is
-- (调休). Days not listed follow Monday–Friday.
CREATE TABLE qinqing.calendar_days (
    day  date PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('holiday', 'workday'))
);
CREATE TABLE qinqing.calendar_years (
    year         int PRIMARY KEY,
    published_at timestamptz NOT NULL DEFAULT now(),
    source       text NOT NULL
);

-- 2025: 国务院办公厅关于2025年部分节假日安排的通知 (国办发明电〔2024〕12号).
INSERT INTO qinqing.calendar_years (year, source) VALUES (2025, 'State Council notice 2024-11-12');
INSERT INTO qinqing.calendar_days (day, kind)
SELECT d::date, 'holiday' FROM (VALUES
    ('2025-01-01'),
    ('2025-01-28'), ('2025-01-29'), ('2025-01-30'), ('2025-01-31'),
    ('2025-02-01'), ('2025-02-02'), ('2025-02-03'), ('2025-02-04'),
    ('2025-04-04'), ('2025-04-05'), ('2025-04-06'),
    ('2025-05-01'), ('2025-05-02'), ('2025-05-03'), ('2025-05-04'), ('2025-05-05'),
    ('2025-05-31'), ('2025-06-01'), ('2025-06-02'),
    ('2025-10-01'), ('2025-10-02'), ('2025-10-03'), ('2025-10-04'),
    ('2025-10-05'), ('2025-10-06'), ('2025-10-07'), ('2025-10-08')
) AS v(d);
INSERT INTO qinqing.calendar_days (day, kind)
SELECT d::date, 'workday' FROM (VALUES
    ('2025-01-26'), ('2025-02-08'), ('2025-04-27'), ('2025-09-28'), ('2025-10-11')
) AS v(d);

-- 2026: 国务院办公厅关于2026年部分节假日安排的通知.
INSERT INTO qinqing.calendar_years (year, source) VALUES (2026, 'State Council notice 2025-11');
INSERT INTO qinqing.calendar_days (day, kind)
SELECT d::date, 'holiday' FROM (VALUES
    ('2026-01-01'), ('2026-01-02'), ('2026-01-03'),
    ('2026-02-15'), ('2026-02-16'), ('2026-02-17'), ('2026-02-18'), ('2026-02-19'),
    ('2026-02-20'), ('2026-02-21'), ('2026-02-22'), ('2026-02-23'),
    ('2026-04-04'), ('2026-04-05'), ('2026-04-06'),
    ('2026-05-01'), ('2026-05-02'), ('2026-05-03'), ('2026-05-04'), ('2026-05-05'),
    ('2026-06-19'), ('2026-06-20'), ('2026-06-21'),
    ('2026-09-25'), ('2026-09-26'), ('2026-09-27'),
    ('2026-10-01'), ('2026-10-02'), ('2026-10-03'), ('2026-10-04'),
    ('2026-10-05'), ('2026-10-06'), ('2026-10-07')
) AS v(d);
INSERT INTO qinqing.calendar_days (day, kind)
SELECT d::date, 'workday' FROM (VALUES
    ('2026-01-04'), ('2026-02-14'), ('2026-02-28'), ('2026-05-09'), ('2026-09-20'), ('2026-10-10')
) AS v(d);

-- +goose Down
DROP SCHEMA qinqing CASCADE;
