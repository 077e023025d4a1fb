package telemetry

import (
	"encoding/binary"
	"math"

	"go.opentelemetry.io/otel/attribute"
)

// wire appends protocol buffer fields to a byte slice: the part of the
// protobuf encoding the OTLP messages need, written out so that a function
// binary links neither the protobuf runtime nor, through the OTLP
// collector packages, gRPC (see otlp.go for why).
//
// Nested messages are written in place: begin appends the tag and a
// one-byte length, end fixes the length once the message is written and
// moves it right when the length needs more bytes.
type wire struct{ b []byte }

const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

func (w *wire) tag(field, typ int) { w.uvarint(uint64(field)<<3 | uint64(typ)) }

func (w *wire) uvarint(v uint64) {
	for v >= 0x80 {
		w.b = append(w.b, byte(v)|0x80)
		v >>= 7
	}
	w.b = append(w.b, byte(v))
}

// varint writes a varint field; proto3 omits zero values.
func (w *wire) varint(field int, v uint64) {
	if v != 0 {
		w.tag(field, wireVarint)
		w.uvarint(v)
	}
}

func (w *wire) boolean(field int, v bool) {
	if v {
		w.varint(field, 1)
	}
}

func (w *wire) fixed64(field int, v uint64) {
	if v != 0 {
		w.tag(field, wireFixed64)
		w.b = binary.LittleEndian.AppendUint64(w.b, v)
	}
}

// double writes a double field; present reports whether to write a zero
// (fields with explicit presence: histogram sum, min, max).
func (w *wire) double(field int, v float64, present bool) {
	if v != 0 || present {
		w.tag(field, wireFixed64)
		w.b = binary.LittleEndian.AppendUint64(w.b, math.Float64bits(v))
	}
}

func (w *wire) fixed32(field int, v uint32) {
	if v != 0 {
		w.tag(field, wireFixed32)
		w.b = binary.LittleEndian.AppendUint32(w.b, v)
	}
}

func (w *wire) str(field int, s string) {
	if s != "" {
		w.tag(field, wireBytes)
		w.uvarint(uint64(len(s)))
		w.b = append(w.b, s...)
	}
}

func (w *wire) bytes(field int, p []byte) {
	if len(p) != 0 {
		w.tag(field, wireBytes)
		w.uvarint(uint64(len(p)))
		w.b = append(w.b, p...)
	}
}

// begin starts a nested message; end(begin(…)) closes it.
func (w *wire) begin(field int) int {
	w.tag(field, wireBytes)
	w.b = append(w.b, 0)
	return len(w.b)
}

func (w *wire) end(start int) {
	n := len(w.b) - start
	if n < 0x80 {
		w.b[start-1] = byte(n)
		return
	}
	size := 0
	for v := n; v > 0; v >>= 7 {
		size++
	}
	// Make room for the longer length and move the message right.
	w.b = append(w.b, make([]byte, size-1)...)
	copy(w.b[start+size-1:], w.b[start:start+n])
	at := start - 1
	for v := uint64(n); ; v >>= 7 {
		if v < 0x80 {
			w.b[at] = byte(v)
			break
		}
		w.b[at] = byte(v) | 0x80
		at++
	}
}

// keyValues writes attributes as repeated KeyValue messages.
func (w *wire) keyValues(field int, kvs []attribute.KeyValue) {
	for _, kv := range kvs {
		at := w.begin(field)
		w.str(1, string(kv.Key))
		av := w.begin(2)
		w.anyValue(kv.Value)
		w.end(av)
		w.end(at)
	}
}

// anyValue writes the fields of an AnyValue (its oneof).
func (w *wire) anyValue(v attribute.Value) {
	switch v.Type() {
	case attribute.BOOL:
		w.tag(2, wireVarint)
		w.uvarint(b2u(v.AsBool()))
	case attribute.INT64:
		w.tag(3, wireVarint)
		w.uvarint(uint64(v.AsInt64()))
	case attribute.FLOAT64:
		w.tag(4, wireFixed64)
		w.b = binary.LittleEndian.AppendUint64(w.b, math.Float64bits(v.AsFloat64()))
	case attribute.STRING:
		// A oneof member is written even when empty: "" is a value.
		w.tag(1, wireBytes)
		w.uvarint(uint64(len(v.AsString())))
		w.b = append(w.b, v.AsString()...)
	case attribute.BYTESLICE:
		p := v.AsByteSlice()
		w.tag(7, wireBytes)
		w.uvarint(uint64(len(p)))
		w.b = append(w.b, p...)
	case attribute.BOOLSLICE:
		array(w, v.AsBoolSlice(), attribute.BoolValue)
	case attribute.INT64SLICE:
		array(w, v.AsInt64Slice(), attribute.Int64Value)
	case attribute.FLOAT64SLICE:
		array(w, v.AsFloat64Slice(), attribute.Float64Value)
	case attribute.STRINGSLICE:
		array(w, v.AsStringSlice(), attribute.StringValue)
	case attribute.SLICE:
		array(w, v.AsSlice(), func(x attribute.Value) attribute.Value { return x })
	case attribute.MAP:
		kvl := w.begin(6)
		w.keyValues(1, v.AsMap())
		w.end(kvl)
	default:
		// EMPTY: an AnyValue with no member set.
	}
}

// array writes the ArrayValue member of an AnyValue: each element as an
// AnyValue of its own (slices are rare in spans; scalars take the direct
// cases of anyValue).
func array[T any](w *wire, xs []T, value func(T) attribute.Value) {
	arr := w.begin(5)
	for _, x := range xs {
		el := w.begin(1)
		w.anyValue(value(x))
		w.end(el)
	}
	w.end(arr)
}

func b2u(v bool) uint64 {
	if v {
		return 1
	}
	return 0
}
