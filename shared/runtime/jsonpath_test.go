package runtime

import (
	"testing"

	"github.com/qinqing/qinqing/shared/event"
)

func TestDecodeJSONNamesArrayIndex(t *testing.T) {
	t.Parallel()
	type doc struct {
		Name      string `json:"name"`
		SizeBytes int64  `json:"sizeBytes"`
	}
	type payload struct {
		Documents []doc          `json:"documents"`
		Nested    [][]int        `json:"nested"`
		Map       map[string]doc `json:"map"`
		Year      int            `json:"year"`
	}
	for in, want := range map[string]string{
		`{"documents":[{"sizeBytes":1},{"sizeBytes":2},{"name":"x","sizeBytes":"3"}]}`: "documents[2].sizeBytes",
		`{"documents":[{},{"name":5}]}`:                  "documents[1].name",
		`{"documents":[{"name":"a[0]","sizeBytes":{}}]}`: "documents[0].sizeBytes",
		`{"nested":[[1],[2,"x"]]}`:                       "nested[1][1]",
		`{"map":{"k":{"sizeBytes":"x"}}}`:                "map.k.sizeBytes",
		`{"documents":{"x":1}}`:                          "documents",
		`{"documents":[1]}`:                              "documents[0]",
		`{"year":"2026"}`:                                "year",
		`{"documents":[{"sizeBytes":1,"x":[1,{"y":[]}]},{"sizeBytes":true}]}`: "documents[1].sizeBytes",
	} {
		var p payload
		err := DecodeJSON([]byte(in), &p)
		var e *event.Error
		if err == nil || event.ErrorCode(err) != event.EINVALID {
			t.Errorf("DecodeJSON(%s) = %v, want EINVALID", in, err)
			continue
		}
		if e = err.(*event.Error); e.Field != want {
			t.Errorf("DecodeJSON(%s) field = %q, want %q (%v)", in, e.Field, want, err)
		}
	}
}
