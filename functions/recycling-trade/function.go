package main

import (
	"context"
	"errors"
	"path"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/docs"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/recycling"
	"github.com/qinqing/qinqing/shared/runtime"
)

const name = "recycling-trade"

// Function handles the recycling platform's events.
type Function struct {
	pool *pgxpool.Pool
	docs *docs.Store
	loc  *time.Location
	imp  ImportConfig
}

// New returns the function's handlers; imp configures the bulk import.
func New(env *runtime.Env, store *docs.Store, imp ImportConfig) *runtime.Function {
	f := &Function{pool: env.Pool, docs: store, loc: env.Loc, imp: imp}
	return &runtime.Function{
		Name: name,
		// Longer than the runtime's default: a bulk import of a million rows takes about a minute
		// (the chart gives it timeoutSeconds 600).
		RequestTimeout: runtime.LongRequestTimeout,
		Handlers: map[string]runtime.Handler{
			contract.TypeLicenceRegistered: onAt(f.loc, f.register),
			contract.TypeTradeRecorded:     onAt(f.loc, f.record),
			contract.TypeTradesImported:    runtime.Staged(f.importTrades),
			event.PingType:                 runtime.Jobs(map[string]runtime.Job{"recycling-stats": runtime.JobFunc(f.stats)}),
		},
	}
}

func (f *Function) register(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *contract.LicenceRegistered) (runtime.Result, error) {
	if err := upsertLicence(ctx, tx, p.Licence(), m.Time); err != nil {
		return runtime.Result{}, err
	}
	return runtime.Reply(contract.TypeLicenceAccepted, contract.LicenceAccepted{LicenceNo: p.LicenceNo}), nil
}

// refusal rolls back the savepoint of a trade that fails at the last step.
type refusal string

func (r refusal) Error() string { return string(r) }

// record judges one trade: duplicate, licence, weight, then capacity. The
// capacity and the manifest are claimed together under a savepoint: the
// conditional UPDATE of the collector's year total serialises concurrent
// trades of one collector, and a manifest recorded concurrently by another
// event undoes the claim.
func (f *Function) record(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *contract.TradeRecorded) (runtime.Result, error) {
	t := p.Trade()
	reject := func(reason string) (runtime.Result, error) {
		return runtime.Reply(contract.TypeTradeRejected, contract.TradeRejected{TradeID: t.TradeID, ManifestNo: t.ManifestNo, Reason: reason}), nil
	}
	if dup, err := tradeExists(ctx, tx, t.ManifestNo, t.TradeID); err != nil || dup {
		if err != nil {
			return runtime.Result{}, err
		}
		return reject(recycling.ReasonDuplicateManifest)
	}
	lic, err := getLicence(ctx, tx, t.LicenceNo)
	if err != nil {
		return runtime.Result{}, err
	}
	if reason := recycling.Judge(t, lic, f.loc); reason != "" {
		return reject(reason)
	}
	uploads, err := f.docs.PresignUploads(ctx, path.Join("recycling", "trades", t.TradeID), p.Documents)
	if err != nil {
		return runtime.Result{}, err
	}
	err = postgres.InTx(ctx, tx, func(sp pgx.Tx) error {
		ok, err := addToYear(ctx, sp, t.CollectorUSCC, t.Year(f.loc), t.WeightGrams, lic.CapacityGrams)
		if err != nil {
			return err
		}
		if !ok {
			return refusal(recycling.ReasonCapacityExceeded)
		}
		inserted, err := insertTrade(ctx, sp, t, p.Documents, m.Time)
		if err != nil {
			return err
		}
		if !inserted {
			return refusal(recycling.ReasonDuplicateManifest)
		}
		return nil
	})
	var r refusal
	if errors.As(err, &r) {
		return reject(string(r))
	}
	if err != nil {
		return runtime.Result{}, err
	}
	return runtime.Reply(contract.TypeTradeAccepted, contract.TradeAccepted{TradeID: t.TradeID, ManifestNo: t.ManifestNo, Uploads: uploads}), nil
}

// atValidator is a payload whose validity depends on the event time or
// the business time zone.
type atValidator[T any] interface {
	*T
	ValidateAt(asOf time.Time, loc *time.Location) error
}

// onAt is runtime.On for payloads validated against the event time and
// the business time zone loc: the check happens before any transaction,
// so a 400 writes nothing.
func onAt[T any, P atValidator[T]](loc *time.Location, fn func(ctx context.Context, tx pgx.Tx, m runtime.Meta, p P) (runtime.Result, error)) runtime.Handler {
	return runtime.HandlerFunc(func(m runtime.Meta, data []byte) (runtime.Run, error) {
		p := P(new(T))
		if err := runtime.DecodeJSON(data, p); err != nil {
			return nil, err
		}
		if err := p.ValidateAt(m.Time, loc); err != nil {
			return nil, err
		}
		return func(ctx context.Context, tx pgx.Tx) (runtime.Result, error) { return fn(ctx, tx, m, p) }, nil
	})
}
