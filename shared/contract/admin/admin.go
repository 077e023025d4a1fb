// Package admin holds the wire types of the operator endpoints: the
// bodies the dead-letter function's /deadletters and webhook-egress's
// /deliveries answer, which cmd/qinqing decodes with the same structs. It
// is part of the contract (shared/contract registers them in Admin) but a
// package of its own that imports nothing of qinqing, so the operator
// command does not link the functions' dependencies.
package admin

import (
	"encoding/json"
	"time"
)

// DeadLetters is the body of the dead-letter function's GET /deadletters,
// which `qinqing deadletters list` reads.
type DeadLetters struct {
	Items []DeadLetter `json:"items"`
}

// DeadLetter is a dead letter as the operator endpoints show it (contract
// section 10), with a few more fields that help decide on a replay: an
// item of GET /deadletters and the answer of POST …/replay.
type DeadLetter struct {
	ID              string          `json:"id"`
	ReceivedAt      time.Time       `json:"receivedAt"`
	Status          string          `json:"status"`
	ErrorDest       *string         `json:"errorDest"`
	ErrorCode       *int            `json:"errorCode"`
	ErrorData       *string         `json:"errorData"`
	Event           DeadLetterEvent `json:"event"`
	Failures        int             `json:"failures"`
	Replays         int             `json:"replays"`
	ReplayedAt      *time.Time      `json:"replayedAt,omitempty"`
	LastReplayError *string         `json:"lastReplayError,omitempty"`
}

// DeadLetterEvent is the stored event in the attribute names of
// CloudEvents' JSON format. data is the JSON value when the data is JSON,
// a string when it is other text; binary data is in data_base64 (data is
// null then).
type DeadLetterEvent struct {
	SpecVersion     string            `json:"specversion"`
	ID              string            `json:"id"`
	Source          string            `json:"source"`
	Type            string            `json:"type"`
	Subject         string            `json:"subject,omitempty"`
	Time            *string           `json:"time"`
	DataContentType string            `json:"datacontenttype,omitempty"`
	DataSchema      string            `json:"dataschema,omitempty"`
	Extensions      map[string]string `json:"extensions,omitempty"`
	Data            json.RawMessage   `json:"data"`
	DataBase64      string            `json:"data_base64,omitempty"`
}

// Deliveries is the body of webhook-egress's GET /deliveries, which
// `qinqing deliveries list` reads.
type Deliveries struct {
	Items []Delivery `json:"items"`
}

// Delivery is one POST to a portal, as GET /deliveries lists it.
type Delivery struct {
	Portal      string    `json:"portal"`
	WebhookID   string    `json:"webhookId"`
	Type        string    `json:"type"`
	Attempt     int       `json:"attempt"`
	Status      string    `json:"status"`
	HTTPStatus  *int      `json:"httpStatus"`
	LatencyMs   float64   `json:"latencyMs"`
	Error       *string   `json:"error"`
	AttemptedAt time.Time `json:"attemptedAt"`
}
