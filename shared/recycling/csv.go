package recycling

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/qinqing/qinqing/shared/event"
)

// CSVHeader is the header row of a bulk import file (contract section 7).
var CSVHeader = []string{"tradeId", "manifestNo", "producerUscc", "producerName", "producerCounty",
	"collectorUscc", "licenceNo", "wasteCode", "batterySets", "weightKg", "amountFen", "occurredAt"}

// Column positions in CSVHeader.
const (
	colTradeID = iota
	colManifestNo
	colProducerUSCC
	colProducerName
	colProducerCounty
	colCollectorUSCC
	colLicenceNo
	colWasteCode
	colBatterySets
	colWeightKg
	colAmountFen
	colOccurredAt
)

// columnOf maps the JSON path of a trade field to its CSV column, so a
// row's errors name the column the file has.
var columnOf = map[string]string{
	"tradeId":             "tradeId",
	"manifestNo":          "manifestNo",
	"producer.uscc":       "producerUscc",
	"producer.name":       "producerName",
	"producer.county":     "producerCounty",
	"collector.uscc":      "collectorUscc",
	"collector.licenceNo": "licenceNo",
	"wasteCode":           "wasteCode",
	"batterySets":         "batterySets",
	"weightKg":            "weightKg",
	"amountFen":           "amountFen",
	"occurredAt":          "occurredAt",
}

// CheckHeader checks an import file's first record. A UTF-8 byte order
// mark (as spreadsheet exports write) before the first name is ignored.
func CheckHeader(rec []string) error {
	if len(rec) > 0 {
		rec = append([]string{strings.TrimPrefix(rec[0], "\ufeff")}, rec[1:]...)
	}
	if len(rec) != len(CSVHeader) {
		return errors.New("header must be " + strings.Join(CSVHeader, ","))
	}
	for i, name := range CSVHeader {
		if strings.TrimSpace(rec[i]) != name {
			return errors.New("header must be " + strings.Join(CSVHeader, ",") + "; column " +
				strconv.Itoa(i+1) + " is " + strconv.Quote(rec[i]) + ", want " + strconv.Quote(name))
		}
	}
	return nil
}

// ParseRow reads one data record of an import file into a trade, with the
// rules of a single trade event: every value as its JSON counterpart
// (batterySets and amountFen integers, weightKg a decimal string with at
// most 3 decimals, occurredAt RFC 3339 and not after asOf). Errors are
// EINVALID and name the CSV column.
func ParseRow(rec []string, asOf time.Time) (Trade, error) {
	if len(rec) != len(CSVHeader) {
		return Trade{}, event.Invalid("", "row has %d fields, want %d", len(rec), len(CSVHeader))
	}
	t := Trade{
		TradeID:        rec[colTradeID],
		ManifestNo:     rec[colManifestNo],
		ProducerUSCC:   rec[colProducerUSCC],
		ProducerName:   rec[colProducerName],
		ProducerCounty: rec[colProducerCounty],
		CollectorUSCC:  rec[colCollectorUSCC],
		LicenceNo:      rec[colLicenceNo],
		WasteCode:      rec[colWasteCode],
	}
	var err error
	if t.BatterySets, err = parseInt("batterySets", rec[colBatterySets]); err != nil {
		return t, err
	}
	if t.WeightGrams, err = ParseWeight(rec[colWeightKg]); err != nil {
		return t, event.Invalid("weightKg", "%v", err)
	}
	if t.AmountFen, err = parseInt("amountFen", rec[colAmountFen]); err != nil {
		return t, err
	}
	if t.OccurredAt, err = event.ParseTime("occurredAt", rec[colOccurredAt]); err != nil {
		return t, err
	}
	t.OccurredAt = t.OccurredAt.Truncate(time.Microsecond) // what Postgres keeps
	if err := t.Validate(asOf); err != nil {
		var e *event.Error
		if errors.As(err, &e) {
			if col, ok := columnOf[e.Field]; ok {
				return t, event.Invalid(col, "%s", e.Message)
			}
		}
		return t, err
	}
	return t, nil
}

// parseInt reads an integer column the way encoding/json reads an integer:
// an optional minus and digits, nothing else.
func parseInt(field, v string) (int64, error) {
	if v == "" {
		return 0, event.Invalid(field, "is required")
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || v[0] == '+' {
		return 0, event.Invalid(field, "must be an integer, got %q", v)
	}
	return n, nil
}
