package jsbridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// TaskViews reads what an observer of one group sees: the latest status of
// its tasks, one task's status, events and playbook. It never writes.
type TaskViews struct {
	js     jetstream.JetStream
	names  Names
	kv     jetstream.KeyValue
	events jetstream.Stream
}

// NewTaskViews opens the status bucket and the events stream for names' group.
func NewTaskViews(ctx context.Context, js jetstream.JetStream, names Names) (*TaskViews, error) {
	kv, err := js.KeyValue(ctx, StatusBucket)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", StatusBucket, err)
	}
	events, err := js.Stream(ctx, EventsStream)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", EventsStream, err)
	}
	return &TaskViews{js: js, names: names, kv: kv, events: events}, nil
}

// WatchStatuses calls fn with the latest status of every task of the group,
// then once with nil when those have all been given, then with every new
// status as it is written, until ctx ends (it returns ctx's error) or fn
// returns an error (it returns that error). Values that are not a
// TaskStatus are skipped.
func (v *TaskViews) WatchStatuses(ctx context.Context, fn func(*schemas.TaskStatus) error) error {
	return WatchGroupStatuses(ctx, v.kv, v.names.Group, func(e jetstream.KeyValueEntry) error {
		if e == nil {
			return fn(nil) // the end of the current values
		}
		st, err := schemas.ParseTaskStatus(e.Value())
		if err != nil {
			return nil
		}
		return fn(&st)
	})
}

// WatchGroupStatuses calls fn with every status entry (puts only) of
// group in the status bucket kv: the latest of each task, then nil once
// those have all been given, then each new one as it is written. It ends
// when ctx does (with ctx's error) or fn returns an error (with it).
func WatchGroupStatuses(ctx context.Context, kv jetstream.KeyValue, group string, fn func(jetstream.KeyValueEntry) error) error {
	w, err := kv.Watch(ctx, group+".*")
	if err != nil {
		return fmt.Errorf("watch statuses of %s: %w", group, err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("watch statuses of %s: the watch ended", group)
			}
			if e != nil && e.Operation() != jetstream.KeyValuePut {
				continue
			}
			if err := fn(e); err != nil {
				return err
			}
		}
	}
}

// Status returns the latest status of task id, or nil when the group has
// none.
func (v *TaskViews) Status(ctx context.Context, id string) (*schemas.TaskStatus, error) {
	e, err := v.kv.Get(ctx, v.names.StatusKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read status of %s: %w", id, err)
	}
	st, err := schemas.ParseTaskStatus(e.Value())
	if err != nil {
		return nil, fmt.Errorf("read status of %s: %w", id, err)
	}
	return &st, nil
}

// Follow is Follow with the task's events: its stored events first, then
// the new ones and its statuses as they come, until it ends.
func (v *TaskViews) Follow(ctx context.Context, id string, fn func(Update)) (*schemas.TaskStatus, error) {
	return Follow(ctx, v.js, v.names, id, true, fn)
}

// playbookLookAhead is how many of a task's first events Playbook reads
// to find one that names its playbook (lines Ansible prints before the
// callback plugin starts have no event_data).
const playbookLookAhead = 8

// Playbook returns the playbook task id ran, as its first events name it
// (event_data.playbook), or "" when no stored event names one yet.
func (v *TaskViews) Playbook(ctx context.Context, id string) (string, error) {
	subject := EventSubject("*", id)
	seq := uint64(1)
	for range playbookLookAhead {
		m, err := v.events.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("read the events of %s: %w", id, err)
		}
		var ev struct {
			EventData struct {
				Playbook string `json:"playbook"`
			} `json:"event_data"`
		}
		if json.Unmarshal(m.Data, &ev) == nil && strings.TrimSpace(ev.EventData.Playbook) != "" {
			return ev.EventData.Playbook, nil
		}
		seq = m.Sequence + 1
	}
	return "", nil
}
