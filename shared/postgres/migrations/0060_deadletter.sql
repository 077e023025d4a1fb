-- +goose Up
CREATE SCHEMA IF NOT EXISTS deadletter;

-- dead_letters: every event Knative could not deliver after its retries,
-- stored whole so an operator can see it and replay it unchanged.
--
-- A dead letter is identified by the failed event's source + id and the
-- destination that refused it (knativeerrordest, '' when absent): a
-- redelivery to the dead-letter sink is stored once, while the same event
-- refused by two different subscribers gives two dead letters, one per
-- subscriber. The id is derived from that key, so it is stable too.
CREATE TABLE deadletter.dead_letters (
    id                text        PRIMARY KEY,
    source            text        NOT NULL,
    event_id          text        NOT NULL,
    error_dest        text        NOT NULL DEFAULT '',
    -- The event's context attributes, as received. event_time keeps the
    -- attribute's RFC 3339 text, so a replay sends the same instant to the
    -- nanosecond.
    spec_version      text        NOT NULL,
    type              text        NOT NULL,
    subject           text,
    event_time        text,
    data_content_type text,
    data_schema       text,
    -- Every extension attribute (knativeerror* included) in its canonical
    -- string form, as binary-mode HTTP carries it.
    extensions        jsonb       NOT NULL DEFAULT '{}',
    -- The data, byte for byte.
    data              bytea,
    -- knativeerrorcode (the HTTP status the destination answered) and
    -- knativeerrordata (its response body, base64-decoded when Knative sent
    -- it base64-encoded).
    error_code        int,
    error_data        text,
    status            text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'replayed')),
    received_at       timestamptz NOT NULL DEFAULT now(),
    -- How often this event reached the dead-letter sink in a new failure
    -- (a replayed dead letter that fails again is reopened, not duplicated).
    failures          int         NOT NULL DEFAULT 1,
    replays           int         NOT NULL DEFAULT 0,
    replayed_at       timestamptz,
    last_replay_error text,
    CONSTRAINT dead_letters_event_dest UNIQUE (source, event_id, error_dest)
);
CREATE INDEX dead_letters_by_status ON deadletter.dead_letters (status, received_at, id);

-- +goose Down
DROP SCHEMA deadletter CASCADE;
