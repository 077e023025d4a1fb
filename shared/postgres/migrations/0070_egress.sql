-- +goose Up
CREATE SCHEMA IF NOT EXISTS egress;

-- deliveries: the delivery of one event (webhook-id = the CloudEvent id) to
-- one portal, the unit webhook-egress never repeats once it is settled.
-- state: 'sending' while an attempt is in flight (lease_until bounds it,
-- so a crashed attempt can be taken over), 'retrying' after a timeout, a
-- 429 or a 5xx (Knative retries the event), 'delivered' after a 2xx,
-- 'failed' after another 4xx, a redirect or a refused address (permanent:
-- never sent again).
CREATE TABLE egress.deliveries (
    portal       text        NOT NULL,
    webhook_id   text        NOT NULL,
    type         text        NOT NULL,
    event_source text        NOT NULL,
    state        text        NOT NULL CHECK (state IN ('sending', 'retrying', 'delivered', 'failed')),
    attempts     int         NOT NULL DEFAULT 1,
    lease_until  timestamptz,
    http_status  int,
    error        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (portal, webhook_id)
);

-- attempts: every POST to a portal, as operators list them
-- (GET /deliveries): status is the outcome of that attempt.
CREATE TABLE egress.attempts (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    portal       text             NOT NULL,
    webhook_id   text             NOT NULL,
    type         text             NOT NULL,
    attempt      int              NOT NULL,
    status       text             NOT NULL CHECK (status IN ('delivered', 'retrying', 'failed')),
    http_status  int,
    latency_ms   double precision NOT NULL,
    error        text,
    attempted_at timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX attempts_by_portal ON egress.attempts (portal, seq);
CREATE INDEX attempts_by_status ON egress.attempts (status, seq);
CREATE INDEX attempts_by_webhook ON egress.attempts (webhook_id);

-- +goose Down
DROP SCHEMA egress CASCADE;
