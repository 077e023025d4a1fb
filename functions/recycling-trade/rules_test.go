package main

import (
	"testing"
	"time"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/docs/s3test"
	"github.com/qinqing/qinqing/shared/recycling"
	"github.com/qinqing/qinqing/shared/runtime"
	"github.com/qinqing/qinqing/shared/runtime/functest"
	"github.com/qinqing/qinqing/shared/testkit/sample"
)

// Contract section 7's capacity rule: what a collector's accepted trades
// of one calendar year (in the business time zone) weigh stays within its
// licence's annual capacity, to the gram, and a trade that would pass it
// is refused whole and counts for nothing. These tests call the handlers
// on a transaction (functest.OnTx); contract_test.go keeps status codes,
// redelivery, concurrency and problem+json.

// rules is the function on a rolled-back transaction, event time week.
func rules(t *testing.T) *functest.OnTx {
	_, store := s3test.New(t)
	return functest.NewOnTxFor(t, name, week, func(env *runtime.Env) *runtime.Function {
		return New(env, store, ImportConfig{})
	})
}

// judged fails the test unless the trade's reply is trade.accepted
// (reason "") or trade.rejected for reason.
func judged(t *testing.T, res runtime.Result, reason string) {
	t.Helper()
	switch {
	case reason == "" && res.Reply.Type != contract.TypeTradeAccepted:
		t.Fatalf("got %s %+v, want %s", res.Reply.Type, res.Reply.Data, contract.TypeTradeAccepted)
	case reason != "":
		if got := functest.As[contract.TradeRejected](t, res.Reply); res.Reply.Type != contract.TypeTradeRejected || got.Reason != reason {
			t.Fatalf("got %s %+v, want %s %s", res.Reply.Type, got, contract.TypeTradeRejected, reason)
		}
	}
}

// yearGrams is the collector's stored total for the year.
func yearGrams(t *testing.T, h *functest.OnTx, collector string, year int) int64 {
	t.Helper()
	return h.Count(t, `SELECT coalesce((SELECT total_g FROM recycling.collector_years WHERE collector_uscc = $1 AND year = $2), 0)`,
		collector, year)
}

func TestCapacityRule(t *testing.T) {
	t.Parallel()
	t.Run("ErrCapacityExceeded", func(t *testing.T) {
		t.Parallel()
		h := rules(t)
		h.Handle(t, contract.TypeLicenceRegistered, sample.Licence("L-SMALL", collectorB, `"100.500"`))
		judged(t, h.Handle(t, contract.TypeTradeRecorded, sample.Trade("T1", collectorB, "L-SMALL", "60.000", "2026-03-01T10:00:00+08:00")), "")
		// 40.501 kg more would be a gram past the capacity: refused whole.
		judged(t, h.Handle(t, contract.TypeTradeRecorded, sample.Trade("T2", collectorB, "L-SMALL", "40.501", "2026-11-01T10:00:00+08:00")), recycling.ReasonCapacityExceeded)
		// Exactly up to the capacity is allowed; then nothing more fits.
		judged(t, h.Handle(t, contract.TypeTradeRecorded, sample.Trade("T3", collectorB, "L-SMALL", "40.500", "2026-11-01T10:00:00+08:00")), "")
		judged(t, h.Handle(t, contract.TypeTradeRecorded, sample.Trade("T4", collectorB, "L-SMALL", "1.000", "2026-11-29T23:59:59+08:00")), recycling.ReasonCapacityExceeded)
		if g := yearGrams(t, h, collectorB, 2026); g != 100_500 {
			t.Fatalf("2026 total = %d g, want 100500", g)
		}
		if n := h.Count(t, `SELECT count(*) FROM recycling.trades`); n != 2 {
			t.Fatalf("%d trades on record, want the 2 accepted", n)
		}
	})
	t.Run("PerCollector", func(t *testing.T) {
		t.Parallel()
		h := rules(t)
		h.Handle(t, contract.TypeLicenceRegistered, sample.Licence("L-A", collectorA, `10`))
		h.Handle(t, contract.TypeLicenceRegistered, sample.Licence("L-B", collectorB, `10`))
		judged(t, h.Handle(t, contract.TypeTradeRecorded, sample.Trade("T1", collectorA, "L-A", "10", "2026-06-01T10:00:00+08:00")), "")
		// A's year is full; B's is its own.
		judged(t, h.Handle(t, contract.TypeTradeRecorded, sample.Trade("T2", collectorA, "L-A", "1", "2026-06-02T10:00:00+08:00")), recycling.ReasonCapacityExceeded)
		judged(t, h.Handle(t, contract.TypeTradeRecorded, sample.Trade("T3", collectorB, "L-B", "10", "2026-06-02T10:00:00+08:00")), "")
	})
	t.Run("PerCalendarYearInBusinessZone", func(t *testing.T) {
		t.Parallel()
		h := rules(t)
		h.Time = time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC)
		h.Handle(t, contract.TypeLicenceRegistered, sample.Licence("L-SMALL", collectorB, `"10.000"`))
		judged(t, h.Handle(t, contract.TypeTradeRecorded, sample.Trade("T1", collectorB, "L-SMALL", "10.000", "2026-12-31T23:00:00+08:00")), "")
		// 2027-01-01 00:30 in Huzhou is still 2026 in UTC: it counts for
		// 2027, whose capacity is untouched.
		judged(t, h.Handle(t, contract.TypeTradeRecorded, sample.Trade("T2", collectorB, "L-SMALL", "1.000", "2026-12-31T16:30:00Z")), "")
		if g26, g27 := yearGrams(t, h, collectorB, 2026), yearGrams(t, h, collectorB, 2027); g26 != 10_000 || g27 != 1_000 {
			t.Fatalf("totals 2026 %d g, 2027 %d g; want 10000 and 1000", g26, g27)
		}
	})
	t.Run("RefusedBeforeCapacityCountsNothing", func(t *testing.T) {
		t.Parallel()
		h := rules(t)
		h.Handle(t, contract.TypeLicenceRegistered, sample.Licence("L-SMALL", collectorB, `"10.000"`))
		// Refused for its licence or its weight: the year total stays.
		judged(t, h.Handle(t, contract.TypeTradeRecorded, sample.Trade("T1", collectorA, "L-SMALL", "5", "2026-06-01T10:00:00+08:00")), recycling.ReasonUnknownLicence)
		implausible := sample.Trade("T2", collectorB, "L-SMALL", "0.999", "2026-06-01T10:00:00+08:00")
		judged(t, h.Handle(t, contract.TypeTradeRecorded, implausible), recycling.ReasonImplausibleWeight)
		judged(t, h.Handle(t, contract.TypeTradeRecorded, sample.Trade("T3", collectorB, "L-SMALL", "10.000", "2026-06-01T10:00:00+08:00")), "")
		if g := yearGrams(t, h, collectorB, 2026); g != 10_000 {
			t.Fatalf("2026 total = %d g, want 10000", g)
		}
	})
}
