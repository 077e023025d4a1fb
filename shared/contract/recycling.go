package contract

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/recycling"
)

// Event types of waste-battery recycling (contract section 7).
const (
	TypeLicenceRegistered       = "cn.huzhou.recycling.licence.registered"
	TypeLicenceAccepted         = "cn.huzhou.recycling.licence.accepted"
	TypeTradeRecorded           = "cn.huzhou.recycling.trade.recorded"
	TypeTradeAccepted           = "cn.huzhou.recycling.trade.accepted"
	TypeTradeRejected           = "cn.huzhou.recycling.trade.rejected"
	TypeTradesImported          = "cn.huzhou.recycling.trades.imported"
	TypeImportCompleted         = "cn.huzhou.recycling.import.completed"
	TypeRecyclingStatsPublished = "cn.huzhou.recycling.stats.published"
)

// LicenceRegistered registers (or replaces) a collector's licence.
type LicenceRegistered struct {
	LicenceNo string `json:"licenceNo"`
	Collector struct {
		USCC string `json:"uscc"`
		Name string `json:"name"`
	} `json:"collector"`
	// ValidFrom and ValidTo are calendar dates, both inclusive, given as a
	// date ("2026-01-01") or an RFC 3339 timestamp read as its calendar
	// date in the business time zone.
	ValidFrom string `json:"validFrom"`
	ValidTo   string `json:"validTo"`
	// AnnualCapacityKg is a JSON number or a decimal string, in kilograms
	// with at most 3 decimals.
	AnnualCapacityKg json.RawMessage `json:"annualCapacityKg"`

	licence recycling.Licence
}

// Licence is the licence ValidateAt built.
func (p *LicenceRegistered) Licence() *recycling.Licence { return &p.licence }

// ValidateAt checks the payload and builds the licence; loc is the
// business time zone the validity dates are days of.
func (p *LicenceRegistered) ValidateAt(_ time.Time, loc *time.Location) error {
	if err := event.FirstError(
		recycling.LicenceKey("licenceNo", &p.LicenceNo),
		event.ValidateUSCC("collector.uscc", p.Collector.USCC),
		event.RequiredText("collector.name", p.Collector.Name, 200),
	); err != nil {
		return err
	}
	from, err := event.ParseDay("validFrom", p.ValidFrom, loc)
	if err != nil {
		return err
	}
	to, err := event.ParseDay("validTo", p.ValidTo, loc)
	if err != nil {
		return err
	}
	if to.Before(from) {
		return event.Invalid("validTo", "is before validFrom")
	}
	grams, err := parseCapacity(p.AnnualCapacityKg)
	if err != nil {
		return err
	}
	p.licence = recycling.Licence{LicenceNo: p.LicenceNo, CollectorUSCC: p.Collector.USCC, CollectorName: p.Collector.Name,
		ValidFrom: from.Format(time.DateOnly), ValidTo: to.Format(time.DateOnly), CapacityGrams: grams}
	return nil
}

// parseCapacity reads annualCapacityKg, given as a JSON number (30000000)
// or a decimal string ("30000000.000"), exactly: the number's literal text
// is parsed like a weight, never through a float.
func parseCapacity(raw json.RawMessage) (int64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return 0, event.Invalid("annualCapacityKg", "is required")
	}
	lit := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &lit); err != nil {
			return 0, event.Invalid("annualCapacityKg", "is not a JSON string")
		}
	} else if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return 0, event.Invalid("annualCapacityKg", "must be a number of kilograms, got JSON %s", raw)
	}
	g, err := recycling.ParseWeight(lit)
	if err != nil {
		return 0, event.Invalid("annualCapacityKg", "%v", err)
	}
	if g <= 0 {
		return 0, event.Invalid("annualCapacityKg", "must be greater than 0")
	}
	return g, nil
}

// LicenceAccepted is the data of licence.accepted.
type LicenceAccepted struct {
	LicenceNo string `json:"licenceNo"`
}

// Producer is the shop or garage handing over its waste batteries.
type Producer struct {
	USCC   string `json:"uscc"`
	Name   string `json:"name"`
	County string `json:"county"`
}

// Collector is the licensed collector taking them.
type Collector struct {
	USCC      string `json:"uscc"`
	LicenceNo string `json:"licenceNo"`
}

// TradeRecorded is one trade on one manifest.
type TradeRecorded struct {
	TradeID     string           `json:"tradeId"`
	ManifestNo  string           `json:"manifestNo"`
	Producer    Producer         `json:"producer"`
	Collector   Collector        `json:"collector"`
	WasteCode   string           `json:"wasteCode"`
	BatterySets int64            `json:"batterySets"`
	WeightKg    string           `json:"weightKg"`
	AmountFen   *int64           `json:"amountFen"`
	OccurredAt  string           `json:"occurredAt"`
	Documents   []event.Document `json:"documents"`

	trade recycling.Trade
}

// Trade is the trade ValidateAt built.
func (p *TradeRecorded) Trade() *recycling.Trade { return &p.trade }

// ValidateAt checks the payload against the event time asOf and builds
// the trade (in canonical form: manifestNo and licenceNo normalised).
func (p *TradeRecorded) ValidateAt(asOf time.Time, _ *time.Location) error {
	t := recycling.Trade{
		TradeID: p.TradeID, ManifestNo: p.ManifestNo,
		ProducerUSCC: p.Producer.USCC, ProducerName: p.Producer.Name, ProducerCounty: p.Producer.County,
		CollectorUSCC: p.Collector.USCC, LicenceNo: p.Collector.LicenceNo,
		WasteCode: p.WasteCode, BatterySets: p.BatterySets,
	}
	var err error
	if t.WeightGrams, err = recycling.ParseWeight(p.WeightKg); err != nil {
		return event.Invalid("weightKg", "%v", err)
	}
	if p.AmountFen == nil {
		return event.Invalid("amountFen", "is required")
	}
	t.AmountFen = *p.AmountFen
	if t.OccurredAt, err = event.ParseTime("occurredAt", p.OccurredAt); err != nil {
		return err
	}
	t.OccurredAt = t.OccurredAt.Truncate(time.Microsecond) // what Postgres keeps
	if err := t.Validate(asOf); err != nil {
		return err
	}
	if err := event.ValidateDocuments("documents", p.Documents); err != nil {
		return err
	}
	// The reply quotes the keys in the form they are stored in.
	p.ManifestNo, p.Collector.LicenceNo = t.ManifestNo, t.LicenceNo
	p.trade = t
	return nil
}

// TradeAccepted is the data of trade.accepted.
type TradeAccepted struct {
	TradeID    string         `json:"tradeId"`
	ManifestNo string         `json:"manifestNo"`
	Uploads    []event.Upload `json:"uploads"`
}

// TradeRejected is the data of trade.rejected.
type TradeRejected struct {
	TradeID    string `json:"tradeId"`
	ManifestNo string `json:"manifestNo"`
	Reason     string `json:"reason"`
}

// TradesImported announces a CSV of trades in the bucket.
type TradesImported struct {
	BatchID string `json:"batchId"`
	Key     string `json:"key"`
}

// Validate checks the payload.
func (p *TradesImported) Validate() error {
	return event.FirstError(event.ValidateID("batchId", p.BatchID), recycling.Text("key", p.Key, 1024, true))
}

// ImportCompleted is the data of import.completed.
type ImportCompleted struct {
	BatchID   string `json:"batchId"`
	Accepted  int64  `json:"accepted"`
	Rejected  int64  `json:"rejected"`
	ErrorsKey string `json:"errorsKey"`
}

// RecyclingStatsPublished is the data of recycling.stats.published.
type RecyclingStatsPublished struct {
	Period      string `json:"period"`
	Producers   int64  `json:"producers"`
	BatterySets int64  `json:"batterySets"`
	WeightKg    string `json:"weightKg"`
	AmountFen   int64  `json:"amountFen"`
	Key         string `json:"key"`
}
