package runtime

import (
	"context"
	"os"
	"os/signal"
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
	if l, ok := ctx.Value(loggerKey{}).(*zap.SugaredLogger); ok {
		return l
	}
	return zap.NewNop().Sugar()
}

// SignalContext returns a context cancelled on the first SIGTERM or
// interrupt; a second signal ends the process at once (exit status 1).
func SignalContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	c := make(chan os.Signal, 2)
	signal.Notify(c, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-c
		cancel()
		<-c
		os.Exit(1)
	}()
	return ctx
}
