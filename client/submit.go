package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// undoTimeout bounds the removal of the queued status of a task whose
// publish failed; it runs even when the caller's context has ended.
const undoTimeout = 5 * time.Second

// Receipt tells where a submitted task was stored.
type Receipt struct {
	// TaskID is the submitted task's id.
	TaskID string
	// Group is the worker group that will run it.
	Group string
	// Subject is the subject it was published to: <prefix>.<group>.tasks.
	Subject string
	// Sequence is its sequence number in the tasks stream
	// (jsbridge.TasksStream).
	Sequence uint64
}

// NewTaskID returns a random task id of 16 hexadecimal digits.
func NewTaskID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Submit submits req to the client's group; see SubmitJSON. An empty TaskID
// gets NewTaskID, a zero Forks schemas.DefaultForks, and nil ExtraVars,
// Tags and SkipTags are sent empty.
func (c *Client) Submit(ctx context.Context, req schemas.TaskRequest) (*Receipt, error) {
	if req.TaskID == "" {
		req.TaskID = NewTaskID()
	}
	if req.Forks == 0 {
		req.Forks = schemas.DefaultForks
	}
	if req.ExtraVars == nil {
		req.ExtraVars = map[string]any{}
	}
	if req.Tags == nil {
		req.Tags = []string{}
	}
	if req.SkipTags == nil {
		req.SkipTags = []string{}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, withKind(ErrInvalid, fmt.Errorf("encode task request %s: %w", req.TaskID, err))
	}
	return c.SubmitJSON(ctx, body)
}

// SubmitJSON submits a request as a worker reads it: a JSON task, or a
// named-job request in JSON or YAML. It checks the request first
// (schemas.ParseRequest; ErrInvalid),
// then records the task as queued, which fails with ErrTaskExists when the
// id already has a status in the group, then publishes body unchanged to
// the group's task subject with the task id as Nats-Msg-Id. When the
// publish fails the queued status is removed again. Missing streams and
// buckets are created first, as a worker creates them, so a task may wait
// for the first worker; when that fails the error wraps ErrNotProvisioned.
func (c *Client) SubmitJSON(ctx context.Context, body []byte) (*Receipt, error) {
	return c.submit(ctx, body, nil)
}

// submit is SubmitJSON with ship, when set, run once the task id is
// claimed (its queued status created) and before the publish: what a
// runner job ships goes under an id no one else holds.
func (c *Client) submit(ctx context.Context, body []byte, ship func(ctx context.Context, id string) error) (*Receipt, error) {
	pr, err := schemas.ParseRequest(body)
	if err != nil {
		return nil, withKind(ErrInvalid, err)
	}
	req := pr.Task
	store, err := c.statusStore(ctx)
	if err != nil {
		return nil, err
	}
	kv := store.KV()
	rev, err := c.markQueued(ctx, kv, req.TaskID)
	if err != nil {
		return nil, err
	}
	if ship != nil {
		if err := ship(ctx, req.TaskID); err != nil {
			c.undoQueued(ctx, kv, req.TaskID, rev)
			return nil, err
		}
	}
	rcpt, err := c.publish(ctx, req.TaskID, body, pr.Format)
	if err != nil {
		if !errors.Is(err, ErrTaskExists) { // a duplicate's status is the first submission's
			c.undoQueued(ctx, kv, req.TaskID, rev)
		}
		return nil, err
	}
	c.log.Debug("task submitted", "task_id", rcpt.TaskID, "subject", rcpt.Subject, "seq", rcpt.Sequence)
	return rcpt, nil
}

// markQueued creates the task's queued status and returns its revision. It
// doubles as the check that the id is new.
func (c *Client) markQueued(ctx context.Context, kv jetstream.KeyValue, id string) (uint64, error) {
	st := &schemas.TaskStatus{TaskID: id, State: schemas.StateQueued, CreatedAt: schemas.NewTime(time.Now()),
		Output: map[string]any{}, Group: c.names.Group}
	b, err := json.Marshal(st)
	if err != nil {
		return 0, fmt.Errorf("encode status of %s: %w", id, err)
	}
	rev, err := kv.Create(ctx, c.names.StatusKey(id), b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		state := "unknown"
		if prev, err := c.Status(ctx, id); err == nil {
			state = string(prev.State)
		}
		return 0, withKind(ErrTaskExists, fmt.Errorf("task id %s already exists in group %s (state %s)", id, c.names.Group, state))
	}
	if err != nil {
		return 0, fmt.Errorf("create status of %s: %w", id, err)
	}
	return rev, nil
}

// publish stores the task in the tasks stream, once per id.
func (c *Client) publish(ctx context.Context, id string, body []byte, format schemas.RequestFormat) (*Receipt, error) {
	msg := &nats.Msg{Subject: c.names.TaskSubject(), Data: body, Header: nats.Header{}}
	msg.Header.Set("Content-Type", "application/json")
	if format == schemas.FormatYAML {
		msg.Header.Set("Content-Type", "application/yaml")
	}
	ack, err := c.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id))
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		// The tasks stream went away (deleted, or another prefix's
		// stream): create it again and publish once more.
		if _, perr := c.provision(ctx); perr != nil {
			return nil, fmt.Errorf("no stream takes %s: %w", msg.Subject, perr)
		}
		ack, err = c.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id))
	}
	if err != nil {
		return nil, fmt.Errorf("submit: %w", err)
	}
	if ack.Duplicate {
		return nil, withKind(ErrTaskExists, fmt.Errorf("task id %s was already submitted (stream sequence %d)", id, ack.Sequence))
	}
	return &Receipt{TaskID: id, Group: c.names.Group, Subject: msg.Subject, Sequence: ack.Sequence}, nil
}

// undoQueued removes the queued status of a task that was not published,
// unless a worker wrote it since (the publish may have been stored after
// all, with its acknowledgement lost).
func (c *Client) undoQueued(ctx context.Context, kv jetstream.KeyValue, id string, rev uint64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
	defer cancel()
	if err := kv.Delete(ctx, c.names.StatusKey(id), jetstream.LastRevision(rev)); err != nil {
		c.log.Warn("queued status of a task that was not submitted is left", "task_id", id, "err", err)
	}
}
