package jsbridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// Results of a cancel request (see schemas.CancelReply).
const (
	CancelDone     = schemas.CancelDone
	CancelStopping = schemas.CancelStopping
	CancelFinished = schemas.CancelFinished
	CancelUnknown  = schemas.CancelUnknown
)

// CancelReply answers a cancel request: the wire type schemas.CancelReply.
type CancelReply = schemas.CancelReply

// CancelHandlers are the two sides of cancelling: Local runs on every worker
// and stops the task if it runs there; Decide runs on one worker of the group
// and records the cancellation and answers.
type CancelHandlers struct {
	Local  func(id string)
	Decide func(ctx context.Context, id string) CancelReply
	// Service, when set, serves Decide as its endpoint "cancel" (with the
	// same subject and queue group) instead of a plain subscription.
	Service micro.Service
}

// ServeCancels subscribes to the group's cancel subject,
// <prefix>.<group>.tasks.<id>.cancel, which is also where MQTT publishes on
// <prefix>/<group>/tasks/<id>/cancel arrive. It returns a function that
// unsubscribes.
func ServeCancels(nc *nats.Conn, names Names, h CancelHandlers) (func(), error) {
	idOf := func(subject string) string {
		rest := strings.TrimPrefix(subject, names.TaskSubject()+".")
		return strings.TrimSuffix(rest, ".cancel")
	}
	all, err := nc.Subscribe(names.CancelWildcard(), func(m *nats.Msg) { h.Local(idOf(m.Subject)) })
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", names.CancelWildcard(), err)
	}
	decide := func(subject string) []byte {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b, _ := json.Marshal(h.Decide(ctx, idOf(subject)))
		return b
	}
	if h.Service != nil {
		// The endpoint goes when the service stops.
		err = h.Service.AddEndpoint("cancel", micro.HandlerFunc(func(req micro.Request) {
			_ = req.Respond(decide(req.Subject()))
		}), micro.WithEndpointSubject(names.CancelWildcard()), micro.WithEndpointQueueGroup(names.Consumer()+"-cancel"))
		if err != nil {
			_ = all.Unsubscribe()
			return nil, fmt.Errorf("cancel endpoint: %w", err)
		}
		return func() { _ = all.Unsubscribe() }, nil
	}
	one, err := nc.QueueSubscribe(names.CancelWildcard(), names.Consumer()+"-cancel", func(m *nats.Msg) {
		b := decide(m.Subject)
		if m.Reply != "" {
			_ = m.Respond(b)
		}
	})
	if err != nil {
		_ = all.Unsubscribe()
		return nil, fmt.Errorf("subscribe %s: %w", names.CancelWildcard(), err)
	}
	return func() { _ = all.Unsubscribe(); _ = one.Unsubscribe() }, nil
}

// WatchCancelMarkers calls fn with the task id of every cancel marker of
// the group recorded in claims from now on: one watch for the worker
// instead of a read per running task and heartbeat.
func WatchCancelMarkers(claims jetstream.KeyValue, names Names, fn func(id string)) (stop func(), err error) {
	ctx, cancel := context.WithCancel(context.Background())
	w, err := claims.Watch(ctx, names.CancelKey("*"), jetstream.UpdatesOnly(), jetstream.IgnoreDeletes())
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watch cancel markers: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range w.Updates() {
			if e == nil {
				continue
			}
			id := strings.TrimSuffix(strings.TrimPrefix(e.Key(), names.Group+"."), ".cancel")
			fn(id)
		}
	}()
	return func() { _ = w.Stop(); cancel(); <-done }, nil
}

// ErrNoWorker means no worker of the group answered a request.
var ErrNoWorker = errors.New("no worker of the group answered")

// RequestCancel asks the group's workers to cancel task id.
func RequestCancel(ctx context.Context, nc *nats.Conn, names Names, id string) (CancelReply, error) {
	m, err := nc.RequestWithContext(ctx, names.CancelSubject(id), nil)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded) {
			return CancelReply{}, fmt.Errorf("cancel %s: %w", id, ErrNoWorker)
		}
		return CancelReply{}, fmt.Errorf("cancel %s: %w", id, err)
	}
	var r CancelReply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return r, fmt.Errorf("cancel %s: bad reply: %w", id, err)
	}
	return r, nil
}
