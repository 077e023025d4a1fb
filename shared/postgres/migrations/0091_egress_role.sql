-- webhook-egress's group role (the scheme of 0090_roles.sql): its egress
-- schema, the inbox and outbox, and, to find the portal a case came from,
-- only the columns naming a case's origin in the appeal, forum and
-- subsidy schemas (column grants: it cannot read the cases themselves).

-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'qinqing_webhook_egress') THEN
        BEGIN
            CREATE ROLE qinqing_webhook_egress NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- created at the same moment by the migration of another database in the cluster
        END;
    END IF;
END
$$;
-- +goose StatementEnd

GRANT USAGE ON SCHEMA qinqing, egress, appeal, forum, subsidy TO qinqing_webhook_egress;
GRANT SELECT, INSERT, UPDATE, DELETE ON qinqing.inbox, qinqing.outbox TO qinqing_webhook_egress;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA qinqing TO qinqing_webhook_egress;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA egress TO qinqing_webhook_egress;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA egress TO qinqing_webhook_egress;
ALTER DEFAULT PRIVILEGES IN SCHEMA egress GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO qinqing_webhook_egress;
ALTER DEFAULT PRIVILEGES IN SCHEMA egress GRANT USAGE ON SEQUENCES TO qinqing_webhook_egress;
GRANT SELECT (appeal_id, source, signup_id) ON appeal.appeals TO qinqing_webhook_egress;
GRANT SELECT (signup_id, source) ON forum.signups TO qinqing_webhook_egress;
GRANT SELECT (disbursement_id, event_source) ON subsidy.disbursements TO qinqing_webhook_egress;

-- +goose Down
-- The role stays: it belongs to the cluster.
REVOKE ALL ON qinqing.inbox, qinqing.outbox FROM qinqing_webhook_egress;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA qinqing FROM qinqing_webhook_egress;
REVOKE ALL ON ALL TABLES IN SCHEMA egress FROM qinqing_webhook_egress;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA egress FROM qinqing_webhook_egress;
ALTER DEFAULT PRIVILEGES IN SCHEMA egress REVOKE ALL ON TABLES FROM qinqing_webhook_egress;
ALTER DEFAULT PRIVILEGES IN SCHEMA egress REVOKE ALL ON SEQUENCES FROM qinqing_webhook_egress;
REVOKE SELECT (appeal_id, source, signup_id) ON appeal.appeals FROM qinqing_webhook_egress;
REVOKE SELECT (signup_id, source) ON forum.signups FROM qinqing_webhook_egress;
REVOKE SELECT (disbursement_id, event_source) ON subsidy.disbursements FROM qinqing_webhook_egress;
REVOKE USAGE ON SCHEMA qinqing, egress, appeal, forum, subsidy FROM qinqing_webhook_egress;
