-- open311's group role (docs/runtime.md, "Database roles"): it reads the
-- appeals, their history and their escalations (never writes them), and,
-- like every function with a database, runs the outbox relay over the
-- qinqing inbox and outbox.

-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'qinqing_open311') THEN
        BEGIN
            CREATE ROLE qinqing_open311 NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- created at the same moment by the migration of another database in the cluster
        END;
    END IF;
END
$$;
-- +goose StatementEnd
GRANT USAGE ON SCHEMA qinqing TO qinqing_open311;
GRANT SELECT, INSERT, UPDATE, DELETE ON qinqing.inbox, qinqing.outbox TO qinqing_open311;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA qinqing TO qinqing_open311;
GRANT USAGE ON SCHEMA appeal TO qinqing_open311;
GRANT SELECT ON appeal.appeals, appeal.history, appeal.overdue_announcements TO qinqing_open311;

-- +goose Down
REVOKE ALL ON appeal.appeals, appeal.history, appeal.overdue_announcements FROM qinqing_open311;
REVOKE USAGE ON SCHEMA appeal FROM qinqing_open311;
REVOKE ALL ON qinqing.inbox, qinqing.outbox FROM qinqing_open311;
REVOKE USAGE ON ALL SEQUENCES IN SCHEMA qinqing FROM qinqing_open311;
REVOKE USAGE ON SCHEMA qinqing FROM qinqing_open311;
