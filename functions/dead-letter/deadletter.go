package main

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/types"

	"github.com/qinqing/qinqing/shared/contract/admin"
	"github.com/qinqing/qinqing/shared/runtime"
)

// The extensions Knative adds to a dead-lettered event.
const (
	ExtErrorDest = "knativeerrordest"
	ExtErrorCode = "knativeerrorcode"
	ExtErrorData = "knativeerrordata"
)

// Dead letter statuses.
const (
	StatusPending  = "pending"
	StatusReplayed = "replayed"
)

// DeadLetter is one event Knative could not deliver after its retries,
// kept whole: every context attribute, every extension and the data bytes.
type DeadLetter struct {
	ID         string
	Status     string
	ReceivedAt time.Time
	ErrorDest  string // knativeerrordest; "" when absent
	ErrorCode  *int   // knativeerrorcode: the status the destination answered
	ErrorData  *string
	Failures   int
	Replays    int
	ReplayedAt *time.Time
	LastError  *string // why the last replay failed

	SpecVersion     string
	EventID         string
	Source          string
	Type            string
	Subject         string
	Time            string // RFC 3339 as received; "" when absent
	DataContentType string
	DataSchema      string
	Extensions      map[string]string
	Data            []byte
}

// DeadLetterID is the dead letter's id: derived from its dedupe key, the
// event's source + id and the destination that refused it, so a
// redelivery has the same id.
func DeadLetterID(source, eventID, errorDest string) string {
	return runtime.DeriveID("deadletter", source, eventID, errorDest)
}

// FromEvent turns a received dead-lettered event into a DeadLetter.
func FromEvent(ev *cloudevents.Event) *DeadLetter {
	d := &DeadLetter{
		Status:          StatusPending,
		SpecVersion:     ev.SpecVersion(),
		EventID:         ev.ID(),
		Source:          ev.Source(),
		Type:            ev.Type(),
		Subject:         ev.Subject(),
		DataContentType: ev.DataContentType(),
		DataSchema:      ev.DataSchema(),
		Extensions:      map[string]string{},
		Data:            ev.Data(),
	}
	if !ev.Time().IsZero() {
		d.Time = types.FormatTime(ev.Time())
	}
	for k, v := range ev.Extensions() {
		s, err := types.Format(v)
		if err != nil {
			continue
		}
		d.Extensions[k] = s
	}
	d.ErrorDest = d.Extensions[ExtErrorDest]
	if c, err := strconv.Atoi(strings.TrimSpace(d.Extensions[ExtErrorCode])); err == nil {
		d.ErrorCode = &c
	}
	if raw, ok := d.Extensions[ExtErrorData]; ok {
		s := decodeErrorData(raw)
		d.ErrorData = &s
	}
	d.ID = DeadLetterID(d.Source, d.EventID, d.ErrorDest)
	return d
}

// decodeErrorData undoes the base64 encoding Knative applies to the
// destination's response body (knativeerrordata). Knative truncates the
// encoded text to 1024 characters, which may cut a UTF-8 character in two:
// the broken tail is dropped. A value that is not strict base64 of text
// (older Knative versions sent plain text) is kept as it is.
func decodeErrorData(raw string) string {
	if raw == "" {
		return ""
	}
	b, err := base64.StdEncoding.Strict().DecodeString(raw)
	if err != nil {
		return raw
	}
	if len(raw) >= 1024 {
		b = trimPartialRune(b)
	}
	if len(b) == 0 || !utf8.Valid(b) || !printable(string(b)) {
		return raw
	}
	return string(b)
}

// trimPartialRune drops an incomplete UTF-8 sequence at the end of b (the
// start of a character whose remaining bytes were cut off).
func trimPartialRune(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			break
		}
	}
	return b
}

// printable reports text without control characters other than
// whitespace: decoded plain text that happened to be valid base64 gives
// binary garbage, which this rejects.
func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 && r != '\n' && r != '\r' && r != '\t' || r == 0x7f || r == utf8.RuneError {
			return false
		}
	}
	return true
}

// ReplayEvent is the stored event as it is replayed: the same attributes,
// the same data bytes, and every extension except the knativeerror* ones
// (they describe the earlier failure, not the event).
func (d *DeadLetter) ReplayEvent() (*cloudevents.Event, error) {
	ev := cloudevents.NewEvent(d.SpecVersion)
	ev.SetID(d.EventID)
	ev.SetSource(d.Source)
	ev.SetType(d.Type)
	if d.Subject != "" {
		ev.SetSubject(d.Subject)
	}
	if d.Time != "" {
		t, err := types.ParseTime(d.Time)
		if err != nil {
			return nil, err
		}
		ev.SetTime(t)
	}
	if d.DataSchema != "" {
		ev.SetDataSchema(d.DataSchema)
	}
	for k, v := range d.Extensions {
		if k == ExtErrorDest || k == ExtErrorCode || k == ExtErrorData {
			continue
		}
		ev.SetExtension(k, v)
	}
	if d.Data != nil || d.DataContentType != "" {
		if err := ev.SetData(d.DataContentType, d.Data); err != nil {
			return nil, err
		}
	}
	return &ev, ev.Validate()
}

// Item returns the operator view of d.
func (d *DeadLetter) Item() admin.DeadLetter {
	it := admin.DeadLetter{
		ID: d.ID, ReceivedAt: d.ReceivedAt.UTC(), Status: d.Status, ErrorCode: d.ErrorCode, ErrorData: d.ErrorData,
		Failures: d.Failures, Replays: d.Replays, ReplayedAt: d.ReplayedAt, LastReplayError: d.LastError,
		Event: admin.DeadLetterEvent{
			SpecVersion: d.SpecVersion, ID: d.EventID, Source: d.Source, Type: d.Type, Subject: d.Subject,
			DataContentType: d.DataContentType, DataSchema: d.DataSchema, Extensions: d.Extensions,
		},
	}
	if d.ErrorDest != "" {
		dest := d.ErrorDest
		it.ErrorDest = &dest
	}
	if d.Time != "" {
		t := d.Time
		it.Event.Time = &t
	}
	if it.ReplayedAt != nil {
		t := it.ReplayedAt.UTC()
		it.ReplayedAt = &t
	}
	switch {
	case len(d.Data) == 0:
		it.Event.Data = json.RawMessage("null")
	case json.Valid(d.Data):
		it.Event.Data = json.RawMessage(d.Data)
	case utf8.Valid(d.Data):
		s, _ := json.Marshal(string(d.Data))
		it.Event.Data = s
	default:
		it.Event.Data = json.RawMessage("null")
		it.Event.DataBase64 = base64.StdEncoding.EncodeToString(d.Data)
	}
	return it
}

// redactURL drops credentials and the query from a URL before it is logged.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	u.User, u.RawQuery = nil, ""
	return u.String()
}
