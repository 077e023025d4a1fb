package runtime

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"go.uber.org/zap"
)

type loggerKey struct{}

// WithLogger returns a context carrying log, for Logger.
func WithLogger(ctx context.Context, log *zap.SugaredLogger) context.Context {
	return context.WithValue(ctx, loggerKey{}, log)
}

// Logger returns the logger carried by ctx: inside a handler, the
// function's logger tagged with the event's type, id and source. Without
// one it returns a logger that discards everything.
func Logger(ctx context.Context) *zap.SugaredLogger {
	switch l := ctx.Value(loggerKey{}).(type) {
	case *zap.SugaredLogger:
		return l
	case *eventLogger:
		return l.get()
	}
	return zap.NewNop().Sugar()
}

// eventLogger is the logger of one event, tagged with its type, id and
// source when a handler first asks for it: most events log nothing but
// the server's line, and tagging a logger copies its encoder.
type eventLogger struct {
	base            *zap.SugaredLogger
	typ, id, source string
	once            sync.Once
	log             *zap.SugaredLogger
}

func (l *eventLogger) get() *zap.SugaredLogger {
	l.once.Do(func() { l.log = l.base.With("type", l.typ, "id", l.id, "source", l.source) })
	return l.log
}

// withEventLogger returns a context whose Logger is base tagged with the
// event of m, built on first use.
func withEventLogger(ctx context.Context, base *zap.SugaredLogger, m Meta) context.Context {
	return context.WithValue(ctx, loggerKey{}, &eventLogger{base: base, typ: m.Type, id: m.ID, source: m.Source})
}

// SignalContext returns a context cancelled on the first SIGTERM or
// interrupt; a second signal ends the process at once (exit status 1).
// The handler is installed by a goroutine of its own, beside the rest of
// the start (signal.Notify starts the runtime's signal threads, about
// 0.2 ms, and more on a busy cold start); installed is closed once it is
// in place. Until then a signal ends the process as Go's default does,
// which is harmless while no request has been accepted: Serve waits for
// installed before it accepts one.
func SignalContext() (ctx context.Context, installed <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		c := make(chan os.Signal, 2)
		signal.Notify(c, syscall.SIGTERM, os.Interrupt)
		close(done)
		<-c
		cancel()
		<-c
		os.Exit(1)
	}()
	return ctx, done
}
