package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/portals"
	"github.com/qinqing/qinqing/shared/runtime"
)

const name = "webhook-egress"

// Function delivers events to the portals as signed webhooks.
type Function struct {
	pool    *pgxpool.Pool
	portals portals.Set
	clients *Clients
	lease   time.Duration
	log     *zap.SugaredLogger
	now     func() time.Time
}

// New returns the function: POST / for the events of Types, and GET
// /deliveries for operators when adminToken is set. Each POST to a portal
// is bounded by timeout.
func New(env *runtime.Env, ps portals.Set, timeout time.Duration, adminToken string) *runtime.Function {
	f := &Function{pool: env.Pool, portals: ps, clients: NewClients(timeout), lease: timeout + 30*time.Second,
		log: env.Log, now: time.Now}
	h := runtime.StagedReply(f.deliver)
	handlers := make(map[string]runtime.Handler, len(contract.EgressTypes))
	for _, t := range contract.EgressTypes {
		handlers[t] = h
	}
	return &runtime.Function{Name: name, Handlers: handlers, Routes: func(mux *http.ServeMux) {
		if adminToken != "" {
			mux.HandleFunc("GET /deliveries", runtime.AdminOnly(f.log, adminToken, "qinqing-deliveries", f.list))
		}
	}}
}

// deliver is the stage of an event, the whole of its work, run outside
// any transaction (runtime.StagedReply): it finds the portals the event
// goes to and posts it to each (at once), each attempt recorded in its own
// short transaction. A portal to be retried makes it fail (503 naming the
// portals: Knative retries; the portals already served are skipped then);
// otherwise its reply is stored with the event's inbox row, in one
// statement.
func (f *Function) deliver(ctx context.Context, m runtime.Meta, n *Notification) (runtime.Result, error) {
	if err := n.validateFor(m.Type); err != nil {
		return runtime.Result{}, err
	}
	o, err := caseOrigin(ctx, f.pool, m, n)
	if err != nil {
		return runtime.Result{}, err
	}
	targets, rule := f.targets(o, m.Type)
	reply := contract.PortalsNotified{WebhookID: m.ID, Type: m.Type, Rule: rule, Deliveries: make([]contract.DeliveryResult, len(targets))}
	errs := make([]error, len(targets))
	body := Body(m, n.Raw)
	var wg sync.WaitGroup
	for i, p := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reply.Deliveries[i], errs[i] = f.deliverTo(ctx, p, m, body)
		}()
	}
	wg.Wait()
	f.log.Infow("routed", "id", m.ID, "type", m.Type, "rule", rule, "origin", o.source, "via", o.via, "portals", len(targets))
	if err := errors.Join(errs...); err != nil {
		var later []string
		for _, e := range errs {
			var pu *portalUnavailable
			if errors.As(e, &pu) {
				later = append(later, pu.portal)
			}
		}
		if len(later) == 0 {
			return runtime.Result{}, err // a database fault: the generic 5xx
		}
		return runtime.Result{}, &runtime.Resumable{Err: err, Detail: fmt.Sprintf("portal %s did not take the update yet; "+
			"the portals that did are recorded and are not sent it again; retry", strings.Join(later, ", "))}
	}
	return runtime.Reply(contract.TypePortalsNotified, reply), nil
}

// targets applies the routing rule: a case that came from a portal
// (/portals/<name>…) goes to that portal alone, if it subscribed to the
// type; a case from anywhere else to every portal subscribed to the type;
// a case whose origin is not on record to nobody.
func (f *Function) targets(o origin, typ string) ([]*portals.Portal, string) {
	if !o.known {
		return nil, RuleUnknown
	}
	rest, fromPortal := strings.CutPrefix(o.source, "/portals/")
	if !fromPortal {
		return f.portals.Subscribers(typ), RuleBroadcast
	}
	portalName, _, _ := strings.Cut(rest, "/")
	if p, ok := f.portals[portalName]; ok && p.Notify != nil && p.Notify.Subscribes(typ) {
		return []*portals.Portal{p}, RuleOwnPortal
	}
	return nil, RuleOwnPortal
}

// deliverTo posts the event to one portal unless that delivery is settled
// already (delivered, or failed for good), recording the attempt.
func (f *Function) deliverTo(ctx context.Context, p *portals.Portal, m runtime.Meta, body []byte) (contract.DeliveryResult, error) {
	attempt, state, httpStatus, err := claim(ctx, f.pool, p.Name, m, f.lease)
	if err != nil {
		return contract.DeliveryResult{}, err
	}
	if attempt == 0 {
		if state == "sending" {
			return contract.DeliveryResult{}, &portalUnavailable{portal: p.Name, detail: "another attempt is in flight"}
		}
		return contract.DeliveryResult{Portal: p.Name, Status: state, HTTPStatus: httpStatus}, nil
	}
	res := post(ctx, f.clients.For(p.Notify), p.Notify, m.ID, body, f.now())
	fields := []any{"portal", p.Name, "id", m.ID, "type", m.Type, "attempt", attempt, "status", res.status,
		"ms", float64(res.latency.Microseconds()) / 1000}
	if res.httpStatus != nil {
		fields = append(fields, "httpStatus", *res.httpStatus)
	}
	if res.err != "" {
		fields = append(fields, "error", res.err)
	}
	if res.status == StatusDelivered {
		f.log.Infow("delivery", fields...)
	} else {
		f.log.Warnw("delivery", fields...)
	}
	// Recorded even when the event's request was cancelled meanwhile: the
	// portal may have the update.
	if err := record(context.WithoutCancel(ctx), f.pool, p.Name, m, attempt, res); err != nil {
		return contract.DeliveryResult{}, err
	}
	if res.status == StatusRetrying {
		return contract.DeliveryResult{}, &portalUnavailable{portal: p.Name, detail: res.err}
	}
	return contract.DeliveryResult{Portal: p.Name, Status: res.status, HTTPStatus: res.httpStatus}, nil
}

// portalUnavailable is a portal to be tried again later: the event is
// answered 503 (runtime.Resumable) and Knative retries.
type portalUnavailable struct{ portal, detail string }

func (e *portalUnavailable) Error() string {
	return fmt.Sprintf("portal %s: %s (retry)", e.portal, e.detail)
}
