package jsbridge

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/ansible-worker/ansible-worker/schemas"
	"github.com/ansible-worker/ansible-worker/worker"
)

// Ports returns the worker's ports over NATS for the provisioned group:
// the queue, the status ledger, the cancel service and the run sinks that
// publish events and runner statuses under subjectID.
//
// svc, when not nil, is the worker's micro service: its cancel decisions
// are served as the service's endpoint "cancel".
func Ports(nc *nats.Conn, a *Assets, names Names, pub *Publisher, subjectID string, store *StatusStore, svc micro.Service) worker.Ports {
	return worker.Ports{
		Source:    NewQueue(a, names, nc),
		Ledger:    store,
		Cancels:   CancelService{nc: nc, names: names, claims: a.Claims, svc: svc},
		Sinks:     &RunSinks{pub: pub, subjectID: subjectID},
		Responses: NewResponses(pub.js, names),
	}
}

// CancelService serves the group's cancel subject (see ServeCancels).
type CancelService struct {
	nc    *nats.Conn
	names Names
	// claims holds the cancel markers; nil watches none.
	claims jetstream.KeyValue
	// svc serves the decisions as its endpoint "cancel"; nil: a plain
	// queue subscription does.
	svc micro.Service
}

// Serve subscribes the two sides of cancelling: local on every worker,
// decide on one worker of the group. local also gets every cancel marker
// recorded from now on: a cancel whose request this worker missed (it
// was reconnecting) still reaches a task it runs.
func (c CancelService) Serve(local func(string), decide func(context.Context, string) schemas.CancelReply) (func(), error) {
	stop, err := ServeCancels(c.nc, c.names, CancelHandlers{Local: local, Decide: decide, Service: c.svc})
	if err != nil || c.claims == nil {
		return stop, err
	}
	unwatch, err := WatchCancelMarkers(c.claims, c.names, local)
	if err != nil {
		stop()
		return nil, err
	}
	return func() { unwatch(); stop() }, nil
}

// RunSinks publish each run's events and runner statuses to JetStream, in
// order, with a message id per message so a retried publish is stored once.
type RunSinks struct {
	pub       *Publisher
	subjectID string
}

// NewRunSinks publishes with pub under pub.ansible.runner.<subjectID>.
func NewRunSinks(pub *Publisher, subjectID string) *RunSinks {
	return &RunSinks{pub: pub, subjectID: subjectID}
}

// Open starts the outbox of one run.
func (s *RunSinks) Open(ctx context.Context, run worker.RunID) worker.RunSink {
	return &runSink{o: s.pub.NewOutbox(ctx), run: run,
		events: EventSubject(s.subjectID, run.TaskID), statuses: RunnerStatusSubject(s.subjectID, run.TaskID)}
}

type runSink struct {
	o                *Outbox
	run              worker.RunID
	events, statuses string
}

// msgID is unique per task, submission, delivery and message.
func (r *runSink) msgID(kind string, n int) string {
	return fmt.Sprintf("%s.%d.%d.%s%d", r.run.TaskID, r.run.Seq, r.run.Attempt, kind, n)
}

func (r *runSink) Event(counter int, data []byte) { r.o.Add(r.events, r.msgID("e", counter), data) }

func (r *runSink) RunnerStatus(n int, data []byte) { r.o.Add(r.statuses, r.msgID("s", n), data) }

func (r *runSink) Close(ctx context.Context) error { return r.o.Close(ctx) }
