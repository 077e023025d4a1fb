// Command bare-receiver is the comparison the start-up benchmark measures
// the functions against: net/http + the CloudEvents sdk-go binding +
// pgxpool and nothing else. It answers POST / by recording the event's
// source + id in the inbox table (the same dedupe the functions do) in one
// statement and replying with an event of the type + ".accepted". Not a
// function: it is never deployed.
package main

import (
	"context"
	"log"
	"net/http"
	"os"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/jackc/pgx/v5/pgxpool"
)

func main() {
	pool, err := pgxpool.New(context.Background(), os.Getenv("DATABASE_URL")) // connects on first use
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("POST /{$}", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		ev, err := binding.ToEvent(ctx, cehttp.NewMessageFromHttpRequest(r))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if _, err := pool.Exec(ctx, `INSERT INTO qinqing.inbox (function, source, id, type) VALUES ('bare', $1, $2, $3)
			ON CONFLICT DO NOTHING`, ev.Source(), ev.ID(), ev.Type()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		reply := cloudevents.NewEvent()
		reply.SetID(ev.ID() + "-reply")
		reply.SetSource("/bare")
		reply.SetType(ev.Type() + ".accepted")
		_ = reply.SetData(cloudevents.ApplicationJSON, map[string]string{"id": ev.ID()})
		_ = cehttp.WriteResponseWriter(ctx, binding.ToMessage(&reply), http.StatusOK, w)
	})
	log.Fatal(http.ListenAndServe(":"+os.Getenv("PORT"), mux))
}
