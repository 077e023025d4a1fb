// Command probe is a test-only function for the runtime's own contract
// tests: an event that succeeds, one whose handler panics inside its
// transaction, and an extra route that panics.
package main

import (
	"context"
	"net/http"

	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/runtime"
)

const name = "probe"

// Empty is the data of the probe's events.
type Empty struct{}

func main() {
	var cfg struct {
		runtime.Base
		postgres.Config
	}
	runtime.LoadConfig(name, &cfg)
	runtime.Main(name, cfg.Base, cfg.Config, func(context.Context, *runtime.Env) (*runtime.Function, error) {
		return &runtime.Function{
			Name: name,
			Handlers: map[string]runtime.Handler{
				"test.probe.ok": runtime.On(func(ctx context.Context, tx pgx.Tx, _ runtime.Meta, _ *Empty) (runtime.Result, error) {
					var one int
					if err := tx.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil {
						return runtime.Result{}, err
					}
					return runtime.Reply("test.probe.done", map[string]int{"one": one}), nil
				}),
				"test.probe.follow": runtime.On(func(ctx context.Context, tx pgx.Tx, m runtime.Meta, _ *Empty) (runtime.Result, error) {
					// A reply and a follow-up through the outbox.
					res := runtime.Reply("test.probe.done", map[string]string{"id": m.ID})
					res.FollowUps = []runtime.Outgoing{{Type: "test.probe.followed", Data: map[string]string{"id": m.ID}}}
					return res, nil
				}),
				"test.probe.panic": runtime.On(func(ctx context.Context, tx pgx.Tx, m runtime.Meta, _ *Empty) (runtime.Result, error) {
					// Something written before the panic, which must roll back.
					if _, err := tx.Exec(ctx, `INSERT INTO qinqing.calendar_years (year, source, published_at) VALUES (1999, $1, now())`, m.ID); err != nil {
						return runtime.Result{}, err
					}
					panic("probe: handler panics")
				}),
			},
			Routes: func(mux *http.ServeMux) {
				mux.HandleFunc("POST /panic", func(http.ResponseWriter, *http.Request) { panic("probe: route panics") })
			},
		}, nil
	})
}
