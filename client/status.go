package client

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// Status returns the latest TaskStatus of task id. A task the group does
// not know wraps ErrNotFound.
func (c *Client) Status(ctx context.Context, id string) (*schemas.TaskStatus, error) {
	if err := checkTaskID(id); err != nil {
		return nil, err
	}
	store, err := c.statusStore(ctx)
	if err != nil {
		return nil, err
	}
	st, err := store.Get(ctx, c.names.Group, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, withKind(ErrNotFound, fmt.Errorf("no task %s in group %s", id, c.names.Group))
	}
	if err != nil {
		return nil, fmt.Errorf("read status of %s: %w", id, err)
	}
	return st, nil
}

// Filter selects the tasks List returns. The zero Filter selects every task
// of the group.
type Filter struct {
	// State, when set, keeps only the tasks in this state.
	State schemas.State
}

// List returns the latest status of the group's tasks that f selects, the
// oldest first (by CreatedAt, then by id).
func (c *Client) List(ctx context.Context, f Filter) ([]*schemas.TaskStatus, error) {
	store, err := c.statusStore(ctx)
	if err != nil {
		return nil, err
	}
	lister, err := store.KV().ListKeysFiltered(ctx, c.names.Group+".*")
	if err != nil {
		return nil, fmt.Errorf("list tasks of %s: %w", c.names.Group, err)
	}
	list := []*schemas.TaskStatus{}
	for k := range lister.Keys() {
		id := strings.TrimPrefix(k, c.names.Group+".")
		st, err := store.Get(ctx, c.names.Group, id)
		if err != nil || (f.State != "" && st.State != f.State) {
			continue // deleted since it was listed, or not a status
		}
		list = append(list, st)
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i].CreatedAt, list[j].CreatedAt
		if a == nil || b == nil || a.Equal(b.Time) {
			return list[i].TaskID < list[j].TaskID
		}
		return a.Before(b.Time)
	})
	return list, nil
}

// StatusUpdate is one stored TaskStatus, as Watch sees it.
type StatusUpdate struct {
	// TaskID is the task the status belongs to.
	TaskID string
	// Raw is the status as stored, in JSON.
	Raw []byte
	// Status is Raw decoded, or nil when Raw is not a valid TaskStatus.
	Status *schemas.TaskStatus
	// Revision is the update's revision in the status bucket.
	Revision uint64
}

// Watch calls fn with the latest status of every task of the group, then
// with every new status as it is written, like `nats kv watch`, until ctx
// ends (it returns ctx's error) or fn returns an error (it returns that
// error).
func (c *Client) Watch(ctx context.Context, fn func(StatusUpdate) error) error {
	store, err := c.statusStore(ctx)
	if err != nil {
		return err
	}
	return jsbridge.WatchGroupStatuses(ctx, store.KV(), c.names.Group, func(e jetstream.KeyValueEntry) error {
		if e == nil {
			return nil // the end of the current values
		}
		u := StatusUpdate{TaskID: strings.TrimPrefix(e.Key(), c.names.Group+"."), Raw: e.Value(), Revision: e.Revision()}
		if st, err := schemas.ParseTaskStatus(e.Value()); err == nil {
			u.Status = &st
		}
		return fn(u)
	})
}
