package runtime_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
)

// postEvent POSTs a binary-mode CloudEvent of type typ from source with
// id and the JSON data to srv, and returns the status and body (status 0
// and the error's text when the request fails).
func postEvent(srv *httptest.Server, typ, source, id, data string) (int, string) {
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader(data))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Type", typ)
	req.Header.Set("Ce-Source", source)
	req.Header.Set("Ce-Id", id)
	resp, err := srv.Client().Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
