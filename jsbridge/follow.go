package jsbridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// Update is one thing that happened to a followed task: a runner event, a
// runner status or a new TaskStatus. Exactly one field is set.
type Update struct {
	Event  *schemas.Event
	Runner *schemas.RunnerStatus
	Status *schemas.TaskStatus
}

// drainAfterFinal is how long Follow waits, after the final TaskStatus, for
// the final runner status that tells every event has been read.
const drainAfterFinal = 3 * time.Second

// Follow calls fn with the events, runner statuses and TaskStatus updates of
// one task, from its first event on, until the task reaches a final state
// and its events are all delivered, or ctx ends. It returns the final status.
// With events false it follows the TaskStatus alone.
func Follow(ctx context.Context, js jetstream.JetStream, names Names, id string, events bool, fn func(Update)) (*schemas.TaskStatus, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	updates := make(chan Update, 256)
	errs := make(chan error, 2)
	if events {
		stop, err := followEvents(ctx, js, id, updates)
		if err != nil {
			return nil, err
		}
		defer stop()
	}

	stop, err := followStatus(ctx, js, names, id, updates, errs)
	if err != nil {
		return nil, err
	}
	defer stop()

	var final *schemas.TaskStatus
	runnerDone := false
	attempt := 0
	var drain <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return final, ctx.Err()
		case err := <-errs:
			if final != nil {
				return final, nil
			}
			return nil, err
		case <-drain:
			return final, nil
		case u := <-updates:
			fn(u)
			switch {
			case u.Runner != nil && schemas.RunnerFinal(u.Runner.Status):
				runnerDone = true
			case u.Status != nil && u.Status.State.Final():
				final = u.Status
			case u.Status != nil && u.Status.Attempt > attempt && attempt > 0:
				// A redelivered task starts over.
				final, runnerDone, drain = nil, false, nil
			}
			if u.Status != nil {
				attempt = max(attempt, u.Status.Attempt)
			}
			if final != nil {
				if runnerDone || !events {
					return final, nil
				}
				if drain == nil {
					drain = time.After(drainAfterFinal)
				}
			}
		}
	}
}

// followStatus sends every TaskStatus of task id to updates until ctx ends
// or stop is called; when the watch ends by itself it says so on errs.
func followStatus(ctx context.Context, js jetstream.JetStream, names Names, id string, updates chan<- Update, errs chan<- error) (stop func(), err error) {
	kv, err := js.KeyValue(ctx, StatusBucket)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", StatusBucket, err)
	}
	watcher, err := kv.Watch(ctx, names.StatusKey(id))
	if err != nil {
		return nil, fmt.Errorf("watch status of %s: %w", id, err)
	}
	go func() {
		for e := range watcher.Updates() {
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			st, err := schemas.ParseTaskStatus(e.Value())
			if err != nil {
				continue
			}
			select {
			case updates <- Update{Status: &st}:
			case <-ctx.Done():
				return
			}
		}
		errs <- errors.New("status watch ended")
	}()
	return func() { _ = watcher.Stop() }, nil
}

// followEvents sends the task's runner events and statuses, from the first,
// to updates until ctx ends or stop is called.
func followEvents(ctx context.Context, js jetstream.JetStream, id string, updates chan<- Update) (stop func(), err error) {
	cons, err := js.OrderedConsumer(ctx, EventsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{TaskRunnerFilter(id)},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("follow events of %s: %w", id, err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var u Update
		if strings.HasSuffix(m.Subject(), ".event") {
			var ev schemas.Event
			if json.Unmarshal(m.Data(), &ev) != nil {
				return
			}
			u.Event = &ev
		} else {
			var rs schemas.RunnerStatus
			if json.Unmarshal(m.Data(), &rs) != nil {
				return
			}
			u.Runner = &rs
		}
		select {
		case updates <- u:
		case <-ctx.Done():
		}
	})
	if err != nil {
		return nil, fmt.Errorf("follow events of %s: %w", id, err)
	}
	return cc.Stop, nil
}
