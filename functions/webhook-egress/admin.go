package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/qinqing/qinqing/shared/contract/admin"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/runtime"
)

// list answers GET /deliveries[?portal=&status=&webhookId=&limit=]: the
// newest attempts first, at most limit (default 100, at most 1000).
func (f *Function) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	status := q.Get("status")
	switch status {
	case "", StatusDelivered, StatusRetrying, StatusFailed:
	default:
		badParam(w, "status", fmt.Sprintf("status must be %s, %s or %s, got %q", StatusDelivered, StatusRetrying, StatusFailed, status))
		return
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			badParam(w, "limit", fmt.Sprintf("limit must be an integer from 1 to 1000, got %q", v))
			return
		}
		limit = n
	}
	items, err := listAttempts(r.Context(), f.pool, q.Get("portal"), status, q.Get("webhookId"), limit)
	if err != nil {
		runtime.WriteError(w, event.Unavailable(err, "the deliveries cannot be read right now; retry later"), nil)
		return
	}
	if items == nil {
		items = []admin.Delivery{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(admin.Deliveries{Items: items})
}

func badParam(w http.ResponseWriter, field, detail string) {
	runtime.WriteError(w, event.Errorf(event.EINVALID, field, "%s", detail), runtime.AdminTitles)
}
