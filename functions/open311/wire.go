package main

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strings"

	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/runtime"
)

// Format is the answer's format, chosen by the path's extension.
type Format string

// The formats of GeoReport v2.
const (
	JSON Format = "json"
	XML  Format = "xml"
)

// splitFormat cuts "requests.json" into "requests" and JSON; ok is false
// for another or a missing extension.
func splitFormat(file string) (string, Format, bool) {
	base, ext, found := strings.Cut(file, ".")
	if !found {
		return file, JSON, false
	}
	switch Format(ext) {
	case JSON, XML:
		return base, Format(ext), true
	}
	return base, JSON, false
}

// Service is one entry of services.json: an appeal category.
type Service struct {
	XMLName     xml.Name `json:"-" xml:"service"`
	ServiceCode string   `json:"service_code" xml:"service_code"`
	ServiceName string   `json:"service_name" xml:"service_name"`
	Description string   `json:"description" xml:"description"`
	Metadata    bool     `json:"metadata" xml:"metadata"`
	Type        string   `json:"type" xml:"type"`
	Keywords    string   `json:"keywords" xml:"keywords"`
	Group       string   `json:"group" xml:"group"`
}

type servicesXML struct {
	XMLName  xml.Name  `xml:"services"`
	Services []Service `xml:"service"`
}

// Request is one service request as GeoReport v2 shows it. It never holds
// a contact's name, phone or email: qinqing does not store them.
type Request struct {
	XMLName           xml.Name `json:"-" xml:"request"`
	ServiceRequestID  string   `json:"service_request_id" xml:"service_request_id"`
	Status            string   `json:"status" xml:"status"`
	StatusNotes       string   `json:"status_notes" xml:"status_notes"`
	ServiceName       string   `json:"service_name" xml:"service_name"`
	ServiceCode       string   `json:"service_code" xml:"service_code"`
	Description       string   `json:"description" xml:"description"`
	AgencyResponsible string   `json:"agency_responsible" xml:"agency_responsible"`
	ServiceNotice     string   `json:"service_notice" xml:"service_notice"`
	RequestedDatetime string   `json:"requested_datetime" xml:"requested_datetime"`
	UpdatedDatetime   string   `json:"updated_datetime" xml:"updated_datetime"`
	ExpectedDatetime  string   `json:"expected_datetime" xml:"expected_datetime"`
	Address           string   `json:"address" xml:"address"`
}

type requestsXML struct {
	XMLName  xml.Name  `xml:"service_requests"`
	Requests []Request `xml:"request"`
}

// Created is the answer to a POST: the new request's id.
type Created struct {
	XMLName          xml.Name `json:"-" xml:"request"`
	ServiceRequestID string   `json:"service_request_id" xml:"service_request_id"`
}

type createdXML struct {
	XMLName  xml.Name  `xml:"service_requests"`
	Requests []Created `xml:"request"`
}

// Error is one entry of an Open311 error answer.
type Error struct {
	XMLName     xml.Name `json:"-" xml:"error"`
	Code        int      `json:"code" xml:"code"`
	Description string   `json:"description" xml:"description"`
}

type errorsXML struct {
	XMLName xml.Name `xml:"errors"`
	Errors  []Error  `xml:"error"`
}

// write answers v (a slice of Service, Request, Created or Error) with
// status in format f.
func write(w http.ResponseWriter, f Format, status int, v any) {
	var body []byte
	var err error
	if f == XML {
		var doc any
		switch list := v.(type) {
		case []Service:
			doc = servicesXML{Services: list}
		case []Request:
			doc = requestsXML{Requests: list}
		case []Created:
			doc = createdXML{Requests: list}
		case []Error:
			doc = errorsXML{Errors: list}
		}
		body, err = xml.Marshal(doc)
		body = append([]byte(xml.Header), body...)
		w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	} else {
		body, err = json.Marshal(v)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	}
	if err != nil {
		runtime.WriteError(w, &event.Error{Code: event.EINTERNAL, Message: "encoding failed", Err: err}, nil)
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// fail answers err as an Open311 error array, the format GeoReport v2
// gives errors: status and description are those of the runtime's
// problem for err (runtime.ProblemOf), the status also the error's code.
func fail(w http.ResponseWriter, f Format, err error) {
	p := runtime.ProblemOf(err, nil)
	runtime.LogError(w, err)
	write(w, f, p.Status, []Error{{Code: p.Status, Description: p.Detail}})
}
