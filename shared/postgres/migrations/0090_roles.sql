-- Least privilege: one NOLOGIN group role per function that uses the
-- database, with DML on what that function really touches (its own
-- schema, the qinqing inbox and outbox, the calendar where it reads
-- it). Migrations keep running as the owner role; a function connects
-- with a login role that is a member of its group role (created by the
-- operator, or by `go run ./cmd/migrate -create-login-roles`; see
-- docs/deploy.md, "Roles and grants"). webhook-ingress has no database.
--
-- Roles belong to the cluster, grants to this database. The owner needs
-- CREATEROLE only while a role is missing: roles the operator created
-- beforehand are kept as they are.
--
-- A later migration that creates a schema or a table outside these
-- default privileges grants its function role in the same file
-- (docs/runtime.md, "Database roles").

-- +goose Up
-- +goose StatementBegin
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['qinqing_forum_signup', 'qinqing_appeal_router', 'qinqing_deadline_check',
                             'qinqing_subsidy_disbursal', 'qinqing_recycling_trade', 'qinqing_award_ceremony',
                             'qinqing_dead_letter'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- created at the same moment by the migration of another database in the cluster
            END;
        END IF;
    END LOOP;
END
$$;
-- +goose StatementEnd

-- Every function: its inbox rows and follow-ups (the relay leases,
-- delivers and prunes them).
GRANT USAGE ON SCHEMA qinqing TO qinqing_forum_signup, qinqing_appeal_router, qinqing_deadline_check,
    qinqing_subsidy_disbursal, qinqing_recycling_trade, qinqing_award_ceremony, qinqing_dead_letter;
GRANT SELECT, INSERT, UPDATE, DELETE ON qinqing.inbox, qinqing.outbox TO qinqing_forum_signup,
    qinqing_appeal_router, qinqing_deadline_check, qinqing_subsidy_disbursal, qinqing_recycling_trade,
    qinqing_award_ceremony, qinqing_dead_letter;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA qinqing TO qinqing_forum_signup, qinqing_appeal_router,
    qinqing_deadline_check, qinqing_subsidy_disbursal, qinqing_recycling_trade, qinqing_award_ceremony,
    qinqing_dead_letter;

-- The working-day calendar: appeal-router publishes it; deadline-check and
-- subsidy-disbursal compute deadlines with it.
GRANT SELECT, INSERT, UPDATE, DELETE ON qinqing.calendar_days, qinqing.calendar_years TO qinqing_appeal_router;
GRANT SELECT ON qinqing.calendar_days, qinqing.calendar_years TO qinqing_deadline_check, qinqing_subsidy_disbursal;

-- forum-signup: the forum schema.
GRANT USAGE ON SCHEMA forum TO qinqing_forum_signup;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA forum TO qinqing_forum_signup;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA forum TO qinqing_forum_signup;
ALTER DEFAULT PRIVILEGES IN SCHEMA forum GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO qinqing_forum_signup;
ALTER DEFAULT PRIVILEGES IN SCHEMA forum GRANT USAGE ON SEQUENCES TO qinqing_forum_signup;

-- appeal-router: appeals and their history. deadline-check reads the
-- appeal schema and writes its own announcements and monthly reviews.
GRANT USAGE ON SCHEMA appeal TO qinqing_appeal_router, qinqing_deadline_check;
GRANT SELECT, INSERT, UPDATE, DELETE ON appeal.appeals, appeal.history TO qinqing_appeal_router;
GRANT SELECT ON ALL TABLES IN SCHEMA appeal TO qinqing_deadline_check;
GRANT INSERT ON appeal.overdue_announcements, appeal.reviews TO qinqing_deadline_check;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA appeal TO qinqing_appeal_router, qinqing_deadline_check;
ALTER DEFAULT PRIVILEGES IN SCHEMA appeal GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO qinqing_appeal_router;
ALTER DEFAULT PRIVILEGES IN SCHEMA appeal GRANT SELECT ON TABLES TO qinqing_deadline_check;
ALTER DEFAULT PRIVILEGES IN SCHEMA appeal GRANT USAGE ON SEQUENCES TO qinqing_appeal_router, qinqing_deadline_check;

-- subsidy-disbursal: the subsidy ledger is append-only (its triggers refuse
-- UPDATE and DELETE), so INSERT and SELECT; UPDATE only where it changes
-- or row-locks rows (policies; disbursements are locked FOR NO KEY UPDATE,
-- which needs UPDATE, and their trigger still refuses a change).
-- deadline-check reads disbursements and settlements and announces
-- overdue payments.
GRANT USAGE ON SCHEMA subsidy TO qinqing_subsidy_disbursal, qinqing_deadline_check;
GRANT SELECT ON ALL TABLES IN SCHEMA subsidy TO qinqing_subsidy_disbursal;
GRANT INSERT ON subsidy.policies, subsidy.disbursements, subsidy.payment_requests, subsidy.payment_failures,
    subsidy.settlements, subsidy.movements, subsidy.ledger_lines TO qinqing_subsidy_disbursal;
GRANT UPDATE ON subsidy.policies, subsidy.disbursements TO qinqing_subsidy_disbursal;
GRANT SELECT ON subsidy.disbursements, subsidy.settlements, subsidy.payment_overdue_announcements TO qinqing_deadline_check;
GRANT INSERT ON subsidy.payment_overdue_announcements TO qinqing_deadline_check;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA subsidy TO qinqing_subsidy_disbursal;
ALTER DEFAULT PRIVILEGES IN SCHEMA subsidy GRANT SELECT, INSERT ON TABLES TO qinqing_subsidy_disbursal;
ALTER DEFAULT PRIVILEGES IN SCHEMA subsidy GRANT USAGE ON SEQUENCES TO qinqing_subsidy_disbursal;

-- recycling-trade, award-ceremony, dead-letter: their own schema.
GRANT USAGE ON SCHEMA recycling TO qinqing_recycling_trade;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA recycling TO qinqing_recycling_trade;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA recycling TO qinqing_recycling_trade;
ALTER DEFAULT PRIVILEGES IN SCHEMA recycling GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO qinqing_recycling_trade;
ALTER DEFAULT PRIVILEGES IN SCHEMA recycling GRANT USAGE ON SEQUENCES TO qinqing_recycling_trade;

GRANT USAGE ON SCHEMA award TO qinqing_award_ceremony;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA award TO qinqing_award_ceremony;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA award TO qinqing_award_ceremony;
ALTER DEFAULT PRIVILEGES IN SCHEMA award GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO qinqing_award_ceremony;
ALTER DEFAULT PRIVILEGES IN SCHEMA award GRANT USAGE ON SEQUENCES TO qinqing_award_ceremony;

GRANT USAGE ON SCHEMA deadletter TO qinqing_dead_letter;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA deadletter TO qinqing_dead_letter;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA deadletter TO qinqing_dead_letter;
ALTER DEFAULT PRIVILEGES IN SCHEMA deadletter GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO qinqing_dead_letter;
ALTER DEFAULT PRIVILEGES IN SCHEMA deadletter GRANT USAGE ON SEQUENCES TO qinqing_dead_letter;

-- +goose Down
-- The roles stay: they belong to the cluster and may serve other databases.
-- +goose StatementBegin
DO $$
DECLARE
    r text;
    s text;
BEGIN
    FOREACH r IN ARRAY ARRAY['qinqing_forum_signup', 'qinqing_appeal_router', 'qinqing_deadline_check',
                             'qinqing_subsidy_disbursal', 'qinqing_recycling_trade', 'qinqing_award_ceremony',
                             'qinqing_dead_letter'] LOOP
        CONTINUE WHEN NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r);
        FOREACH s IN ARRAY ARRAY['qinqing', 'forum', 'appeal', 'subsidy', 'recycling', 'award', 'deadletter'] LOOP
            EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM %I', s, r);
            EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM %I', s, r);
            EXECUTE format('REVOKE ALL ON SCHEMA %I FROM %I', s, r);
            EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I REVOKE ALL ON TABLES FROM %I', s, r);
            EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I REVOKE ALL ON SEQUENCES FROM %I', s, r);
        END LOOP;
    END LOOP;
END
$$;
-- +goose StatementEnd
