-- +goose Up
CREATE SCHEMA IF NOT EXISTS subsidy;

-- policies: the subsidy policies of POLICIES_FILE as last applied
-- (政策一键兑). The row is also the lock every approval of the policy takes
-- (SELECT … FOR NO KEY UPDATE), so budget and yearly-cap checks are exact
-- whatever the concurrency. budget_fen is the configured total; what is
-- left of it is a ledger balance (policy_budgets below).
CREATE TABLE subsidy.policies (
    policy_id  text PRIMARY KEY,
    name       text        NOT NULL,
    trigger    text        NOT NULL,
    budget_fen bigint      NOT NULL CHECK (budget_fen >= 0),
    definition jsonb       NOT NULL,
    updated_at timestamptz NOT NULL
);

-- disbursements: one entitlement per (policy, enterprise, basis), the basis
-- being the honour + year, the project + milestone, or the request's
-- basisId. Written once at approval, never changed.
CREATE TABLE subsidy.disbursements (
    disbursement_id text PRIMARY KEY,
    policy_id       text        NOT NULL REFERENCES subsidy.policies,
    uscc            text        NOT NULL,
    basis           text        NOT NULL,
    amount_fen      bigint      NOT NULL CHECK (amount_fen > 0),
    -- approval_year is the calendar year of the approval in the business
    -- time zone: the year the per-enterprise cap counts against.
    approval_year   int         NOT NULL,
    approved_at     timestamptz NOT NULL,
    due_at          timestamptz NOT NULL,
    event_type      text        NOT NULL,
    event_source    text        NOT NULL,
    event_id        text        NOT NULL,
    CONSTRAINT disbursements_one_entitlement UNIQUE (policy_id, uscc, basis)
);
CREATE INDEX disbursements_year_cap ON subsidy.disbursements (policy_id, uscc, approval_year) INCLUDE (amount_fen);
CREATE INDEX disbursements_due ON subsidy.disbursements (due_at);

-- payment_requests: each cn.huzhou.subsidy.payment.requested sent to the
-- treasury; attempt 1 at approval, attempt n+1 after attempt n failed.
CREATE TABLE subsidy.payment_requests (
    disbursement_id text        NOT NULL REFERENCES subsidy.disbursements,
    attempt         int         NOT NULL CHECK (attempt >= 1),
    requested_at    timestamptz NOT NULL,
    PRIMARY KEY (disbursement_id, attempt)
);

-- payment_failures: cn.huzhou.subsidy.payment.failed callbacks, one per
-- failed attempt.
CREATE TABLE subsidy.payment_failures (
    disbursement_id text        NOT NULL,
    attempt         int         NOT NULL,
    reason          text        NOT NULL,
    failed_at       timestamptz NOT NULL,
    event_source    text        NOT NULL,
    event_id        text        NOT NULL,
    PRIMARY KEY (disbursement_id, attempt),
    FOREIGN KEY (disbursement_id, attempt) REFERENCES subsidy.payment_requests
);

-- settlements: the treasury's cn.huzhou.subsidy.payment.settled, at most
-- one per disbursement (the primary key is the "never paid twice" of the
-- bookkeeping). settled_at is the treasury's value time.
CREATE TABLE subsidy.settlements (
    disbursement_id text PRIMARY KEY REFERENCES subsidy.disbursements,
    attempt         int         NOT NULL,
    bank_ref        text        NOT NULL,
    settled_at      timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL,
    event_source    text        NOT NULL,
    event_id        text        NOT NULL
);

-- The double-entry ledger, in fen. A movement is one business event
-- (allocation of budget, approval, settlement); its lines move money
-- between accounts and sum to zero. A line's amount is signed: positive
-- means the account receives, negative that it gives. Accounts, each kept
-- per policy (and per disbursement for payable and paid):
--   funding  the appropriation the budget comes from (balance = −allocated)
--   budget   what is left to approve (balance ≥ 0)
--   payable  approved and not yet paid
--   paid     paid out to enterprises
-- allocation: funding → budget; approval: budget → payable;
-- settlement: payable → paid. Lines are never updated or deleted.
CREATE TABLE subsidy.movements (
    movement_id     text PRIMARY KEY,
    kind            text        NOT NULL CHECK (kind IN ('allocation', 'approval', 'settlement')),
    policy_id       text        NOT NULL REFERENCES subsidy.policies,
    disbursement_id text REFERENCES subsidy.disbursements,
    at              timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    memo            text        NOT NULL DEFAULT '',
    CHECK ((kind = 'allocation') = (disbursement_id IS NULL))
);
-- One approval and one settlement per disbursement, by construction.
CREATE UNIQUE INDEX movements_once_per_disbursement ON subsidy.movements (disbursement_id, kind) WHERE disbursement_id IS NOT NULL;

CREATE TABLE subsidy.ledger_lines (
    line_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    movement_id     text   NOT NULL REFERENCES subsidy.movements,
    account         text   NOT NULL CHECK (account IN ('funding', 'budget', 'payable', 'paid')),
    policy_id       text   NOT NULL REFERENCES subsidy.policies,
    disbursement_id text REFERENCES subsidy.disbursements,
    amount_fen      bigint NOT NULL CHECK (amount_fen <> 0)
);
CREATE INDEX ledger_lines_by_policy ON subsidy.ledger_lines (policy_id, account) INCLUDE (amount_fen);
CREATE INDEX ledger_lines_by_disbursement ON subsidy.ledger_lines (disbursement_id, account) INCLUDE (amount_fen)
    WHERE disbursement_id IS NOT NULL;
CREATE INDEX ledger_lines_by_movement ON subsidy.ledger_lines (movement_id);

-- Every movement balances: checked at commit, once all its lines are in.
-- +goose StatementBegin
CREATE FUNCTION subsidy.check_movement_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    total numeric;
BEGIN
    SELECT sum(amount_fen) INTO total FROM subsidy.ledger_lines WHERE movement_id = NEW.movement_id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'ledger movement % does not balance: its lines sum to % fen', NEW.movement_id, total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE CONSTRAINT TRIGGER ledger_lines_balanced AFTER INSERT ON subsidy.ledger_lines
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION subsidy.check_movement_balanced();

-- History is only added to: the ledger and the facts it rests on are never
-- updated or deleted. A correction is a new movement.
-- +goose StatementBegin
CREATE FUNCTION subsidy.forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only: % is not allowed', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER ledger_lines_append_only BEFORE UPDATE OR DELETE ON subsidy.ledger_lines
    FOR EACH ROW EXECUTE FUNCTION subsidy.forbid_change();
CREATE TRIGGER ledger_lines_no_truncate BEFORE TRUNCATE ON subsidy.ledger_lines
    FOR EACH STATEMENT EXECUTE FUNCTION subsidy.forbid_change();
CREATE TRIGGER movements_append_only BEFORE UPDATE OR DELETE ON subsidy.movements
    FOR EACH ROW EXECUTE FUNCTION subsidy.forbid_change();
CREATE TRIGGER movements_no_truncate BEFORE TRUNCATE ON subsidy.movements
    FOR EACH STATEMENT EXECUTE FUNCTION subsidy.forbid_change();
CREATE TRIGGER disbursements_append_only BEFORE UPDATE OR DELETE ON subsidy.disbursements
    FOR EACH ROW EXECUTE FUNCTION subsidy.forbid_change();
CREATE TRIGGER settlements_append_only BEFORE UPDATE OR DELETE ON subsidy.settlements
    FOR EACH ROW EXECUTE FUNCTION subsidy.forbid_change();
CREATE TRIGGER payment_requests_append_only BEFORE UPDATE OR DELETE ON subsidy.payment_requests
    FOR EACH ROW EXECUTE FUNCTION subsidy.forbid_change();
CREATE TRIGGER payment_failures_append_only BEFORE UPDATE OR DELETE ON subsidy.payment_failures
    FOR EACH ROW EXECUTE FUNCTION subsidy.forbid_change();

-- payment_overdue_announcements: each payment not settled by its due time
-- is announced once (cn.huzhou.subsidy.payment.overdue, by deadline-check
-- through shared/subsidy), whatever the number of checks.
CREATE TABLE subsidy.payment_overdue_announcements (
    disbursement_id text PRIMARY KEY REFERENCES subsidy.disbursements,
    as_of           timestamptz NOT NULL,
    announced_at    timestamptz NOT NULL DEFAULT now()
);

-- policy_budgets: each policy's money, from the ledger. allocated =
-- remaining + payable + paid; remaining is what may still be approved.
CREATE VIEW subsidy.policy_budgets AS
SELECT p.policy_id,
       p.name,
       p.budget_fen                                                           AS configured_budget_fen,
       coalesce(-sum(l.amount_fen) FILTER (WHERE l.account = 'funding'), 0)::bigint AS allocated_fen,
       coalesce(sum(l.amount_fen) FILTER (WHERE l.account = 'budget'), 0)::bigint   AS remaining_fen,
       coalesce(sum(l.amount_fen) FILTER (WHERE l.account = 'payable'), 0)::bigint  AS payable_fen,
       coalesce(sum(l.amount_fen) FILTER (WHERE l.account = 'paid'), 0)::bigint     AS paid_fen
FROM subsidy.policies p
LEFT JOIN subsidy.ledger_lines l ON l.policy_id = p.policy_id
GROUP BY p.policy_id, p.name, p.budget_fen;

-- disbursement_status: each disbursement, its ledger balances and payment
-- history. status is 'paid' once settled, else 'payable'.
CREATE VIEW subsidy.disbursement_status AS
SELECT d.disbursement_id,
       d.policy_id,
       d.uscc,
       d.basis,
       d.amount_fen,
       d.approved_at,
       d.due_at,
       CASE WHEN s.disbursement_id IS NULL THEN 'payable' ELSE 'paid' END AS status,
       coalesce((SELECT sum(l.amount_fen) FROM subsidy.ledger_lines l
                 WHERE l.disbursement_id = d.disbursement_id AND l.account = 'payable'), 0)::bigint AS payable_fen,
       coalesce((SELECT sum(l.amount_fen) FROM subsidy.ledger_lines l
                 WHERE l.disbursement_id = d.disbursement_id AND l.account = 'paid'), 0)::bigint    AS paid_fen,
       (SELECT max(r.attempt) FROM subsidy.payment_requests r WHERE r.disbursement_id = d.disbursement_id) AS attempts,
       (SELECT f.reason FROM subsidy.payment_failures f WHERE f.disbursement_id = d.disbursement_id
        ORDER BY f.attempt DESC LIMIT 1)                                                              AS last_failure,
       s.settled_at,
       s.bank_ref
FROM subsidy.disbursements d
LEFT JOIN subsidy.settlements s ON s.disbursement_id = d.disbursement_id;

-- +goose Down
DROP SCHEMA subsidy CASCADE;
