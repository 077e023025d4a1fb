-- +goose Up
CREATE SCHEMA IF NOT EXISTS award;

-- metrics: an enterprise's reported figures for a year, the basis of the
-- top 50 private enterprises (湖州民企50强). One row per enterprise and year:
-- the report with the latest event time; an older report delivered late
-- does not overwrite a newer one (reported_at is the event time).
CREATE TABLE award.metrics (
    uscc         text        NOT NULL,
    year         int         NOT NULL CHECK (year BETWEEN 2000 AND 2100),
    name         text        NOT NULL,
    county       text        NOT NULL,
    private      boolean     NOT NULL,
    revenue_fen  bigint      NOT NULL CHECK (revenue_fen >= 0),
    tax_fen      bigint      NOT NULL CHECK (tax_fen >= 0),
    employees    bigint      NOT NULL CHECK (employees >= 0),
    reported_at  timestamptz NOT NULL,
    event_source text        NOT NULL,
    event_id     text        NOT NULL,
    PRIMARY KEY (uscc, year)
);
-- The ranking reads the private enterprises of one year in ranking order.
CREATE INDEX metrics_ranking ON award.metrics (year, revenue_fen DESC, tax_fen DESC, uscc COLLATE "C") WHERE private;

-- nominations: candidates for the 实干争先 awards. A nomination id is
-- submitted once; the first submission stands.
CREATE TABLE award.nominations (
    nomination_id      text PRIMARY KEY,
    year               int         NOT NULL CHECK (year BETWEEN 2000 AND 2100),
    category           text        NOT NULL CHECK (category IN ('runner', 'contributor', 'striver', 'good_case')),
    nominee_name       text        NOT NULL,
    nominee_uscc       text        NOT NULL DEFAULT '',
    nominee_county     text        NOT NULL DEFAULT '',
    nominee_department text        NOT NULL DEFAULT '',
    nominated_by       text        NOT NULL,
    citation           text        NOT NULL DEFAULT '',
    submitted_at       timestamptz NOT NULL,
    event_source       text        NOT NULL,
    event_id           text        NOT NULL
);
CREATE INDEX nominations_by_year ON award.nominations (year, category);

-- scores: one judge's score for a nomination; a judge's later score (by
-- event time) replaces the earlier one.
CREATE TABLE award.scores (
    nomination_id text         NOT NULL REFERENCES award.nominations,
    judge         text         NOT NULL,
    score         numeric(5,2) NOT NULL CHECK (score >= 0 AND score <= 100),
    scored_at     timestamptz  NOT NULL,
    event_source  text         NOT NULL,
    event_id      text         NOT NULL,
    PRIMARY KEY (nomination_id, judge)
);

-- ceremonies: the latest published result per year, for operators. The
-- documents themselves are in the bucket under awards/<year>/.
CREATE TABLE award.ceremonies (
    year         int PRIMARY KEY,
    as_of        timestamptz NOT NULL,
    event_source text        NOT NULL,
    event_id     text        NOT NULL,
    result       jsonb       NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP SCHEMA award CASCADE;
