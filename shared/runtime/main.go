package runtime

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	goruntime "runtime"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/qinqing/qinqing/shared/calendar"
	"github.com/qinqing/qinqing/shared/postgres"
	"github.com/qinqing/qinqing/shared/telemetry"
)

// Env is what the runtime hands a function's constructor.
type Env struct {
	Name     string
	Base     Base
	Pool     *pgxpool.Pool // nil for functions without a database
	DB       postgres.Config
	Log      *zap.SugaredLogger
	Loc      *time.Location
	Calendar *calendar.Cache

	warm    chan struct{}   // closed once the first connection is made (or failed)
	signals <-chan struct{} // closed once SIGTERM is handled (SignalContext); nil: not Main's

	servedOnce, servedClose sync.Once
	served                  chan struct{} // closed once Serve has answered its first event
}

// Served returns a channel that Serve closes once it has answered its
// first request other than /healthz. Background work that a function
// starts beside its events (the outbox relay, policies written at start)
// waits for it, or for RelayStartDelay, so that it does not compete with
// the first event of a cold start for the CPU and a new connection.
func (e *Env) Served() <-chan struct{} { return e.servedChan() }

func (e *Env) servedChan() chan struct{} {
	e.servedOnce.Do(func() { e.served = make(chan struct{}) })
	return e.served
}

func (e *Env) markServed() { e.servedClose.Do(func() { close(e.servedChan()) }) }

// NewLogger builds the JSON zap logger Knative components use, tagged with
// the function name.
func NewLogger(name, level string) (*zap.SugaredLogger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("LOG_LEVEL: %w", err)
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.EncoderConfig.TimeKey = "ts"
	cfg.EncoderConfig.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	cfg.Sampling = nil
	l, err := cfg.Build()
	if err != nil {
		return nil, err
	}
	return l.Sugar().Named(name), nil
}

// Main runs a function until SIGTERM: logger, pool (when db has a URL),
// the constructor, the HTTP server and the outbox relay. Configuration
// errors stop the process with one line. On SIGTERM it stops accepting,
// finishes in-flight events, stops the relay and closes the pool.
func Main(name string, base Base, db postgres.Config, build func(ctx context.Context, env *Env) (*Function, error)) {
	log, err := NewLogger(name, base.LogLevel)
	if err != nil {
		Fatalf(name, "%v", err)
	}
	loc, err := base.Location()
	if err != nil {
		Fatalf(name, "%v", err)
	}
	sigctx, signals := SignalContext()
	ctx := WithLogger(sigctx, log)
	tel, err := telemetry.Setup(ctx, telemetry.Options{Service: name, Prometheus: base.MetricsPrometheus})
	if err != nil {
		Fatalf(name, "%v", err)
	}
	env := &Env{Name: name, Base: base, DB: db, Log: log, Loc: loc, Calendar: calendar.NewCache(loc), signals: signals}
	if db.URL != "" {
		var tracer pgx.QueryTracer
		if tel.Tracing {
			tracer = telemetry.PgxTracer(nil)
		}
		if env.Pool, err = postgres.Open(ctx, db, tracer); err != nil {
			Fatalf(name, "%v", err)
		}
		// The first connection is made while the server starts, not when
		// the first event needs it; start-up does not wait for it, and a
		// database that is down only shows when an event needs it.
		env.warm = make(chan struct{})
		go warmUp(ctx, env.Pool, env.warm)
		goruntime.Gosched() // let the dial start now, not when main first blocks
		if err := tel.RegisterDatabaseGauges(env.Pool, func(err error) { log.Debugw("metrics gauge", "error", err) }); err != nil {
			Fatalf(name, "%v", err)
		}
	}
	if len(tel.Exporters) > 0 {
		log.Infow("telemetry", "exporters", tel.Exporters)
	}
	fn, err := build(ctx, env)
	if err != nil {
		Fatalf(name, "%v", err)
	}
	err = Serve(ctx, env, fn)
	// Serve has returned: no handler and no relay uses the pool any more.
	// Closing it ends the database sessions cleanly instead of leaving
	// the server to notice dropped connections.
	if env.Pool != nil {
		env.Pool.Close()
	}
	// Flush the spans and metrics still buffered: a pod that scales to
	// zero would otherwise lose its last seconds.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if serr := tel.Shutdown(sctx); serr != nil {
		log.Warnw("telemetry shutdown", "error", serr)
	}
	cancel()
	if err != nil {
		log.Errorw("stopped", "error", err)
		_ = log.Sync()
		os.Exit(1)
	}
	log.Infow("stopped")
	_ = log.Sync()
}

// RelayStartDelay is how long after start the outbox relay begins when no
// event has come in yet; after the first request it begins at once.
const RelayStartDelay = 2 * time.Second

// warmUp opens one pooled connection (postgres.WarmUp; for a pool from
// postgres.StartEarly it waits for the one already being made), then
// closes done. Events wait for done before they take a connection:
// otherwise the pool would open a second one for the first event, and two
// new backends compete.
func warmUp(ctx context.Context, pool *pgxpool.Pool, done chan<- struct{}) {
	defer close(done)
	if err := postgres.WarmUp(ctx, pool); postgres.RefusedStartupParameter(err) {
		Logger(ctx).Errorw("the database refused the session's timeouts as startup parameters: "+
			"if DATABASE_URL is a PgBouncer, set DATABASE_POOLER to pgbouncer-transaction or pgbouncer-session", "error", err)
	}
}

// Serve listens on the configured port and relays the outbox until ctx is
// done, then shuts down gracefully.
func Serve(ctx context.Context, env *Env, fn *Function) error {
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", env.Base.Port))
	if err != nil {
		return err
	}
	ln = ProblemListener(ln) // net/http's own 4xx answers as problem+json
	// The relay waits for the first request after /healthz (or
	// RelayStartDelay): its connections would otherwise compete with the
	// first event's on a cold start.
	server := NewServer(fn, env.Pool, env.Log)
	server.warm = env.warm
	served := env.servedChan()
	guarded := guard(server, limits(env.Base, fn), env.Log, fn.Name)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		guarded.ServeHTTP(w, r)
		if r.URL.Path != "/healthz" {
			env.markServed()
		}
	})
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return WithLogger(context.Background(), env.Log) },
	}
	relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	relayDone := make(chan struct{})
	if env.Pool != nil { // without K_SINK it only prunes
		r := &Relay{Function: env.Name, Pool: env.Pool, Sink: env.Base.Sink, Log: env.Log, Interval: env.Base.RelayInterval,
			OutboxRetention: env.Base.OutboxRetention, InboxRetention: env.Base.InboxRetention,
			ListenURL: env.DB.ListenURL, TransactionPooled: env.DB.TransactionPooled()}
		go func() {
			defer close(relayDone)
			select {
			case <-served:
			case <-time.After(RelayStartDelay):
			case <-relayCtx.Done():
				return
			}
			r.Run(relayCtx)
		}()
	} else {
		close(relayDone)
	}
	if env.signals != nil {
		// No request is accepted before SIGTERM ends it gracefully.
		select {
		case <-env.signals:
		case <-ctx.Done():
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	env.Log.Infow("serving", "port", env.Base.Port, "sink", env.Base.Sink, "handles", len(fn.Handlers))
	select {
	case err := <-errc:
		stopRelay()
		<-relayDone
		return err
	case <-ctx.Done():
	}
	env.Log.Infow("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	stopRelay()
	<-relayDone
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
