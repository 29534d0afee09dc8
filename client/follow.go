package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// cancelTimeout bounds a cancel request whose context has no deadline.
const cancelTimeout = 10 * time.Second

// Follow calls fn with what happens to task id: with events, its runner
// events and statuses from the first one on (a finished task is replayed),
// and its TaskStatus updates. It returns the final TaskStatus once the task
// has ended and its events are all delivered, or ctx's error when ctx ends
// first. fn runs on one goroutine, in order. A task redelivered to another
// worker starts over.
func (c *Client) Follow(ctx context.Context, id string, events bool, fn func(jsbridge.Update)) (*schemas.TaskStatus, error) {
	if err := checkTaskID(id); err != nil {
		return nil, err
	}
	// On a server nothing used yet, the streams and buckets are created, so
	// a task submitted later is followed from its start.
	if _, err := c.statusStore(ctx); err != nil {
		return nil, err
	}
	st, err := jsbridge.Follow(ctx, c.js, c.names, id, events, fn)
	if err != nil && ctx.Err() == nil {
		return st, provisioned(err)
	}
	return st, err
}

// WaitFinal waits until task id reaches a final state and returns that
// status, or ctx's error when ctx ends first.
func (c *Client) WaitFinal(ctx context.Context, id string) (*schemas.TaskStatus, error) {
	return c.Follow(ctx, id, false, func(jsbridge.Update) {})
}

// Cancel asks the group's workers to cancel task id and returns their
// answer: a waiting task is cancelled at once (jsbridge.CancelDone), a
// running one is being stopped (jsbridge.CancelStopping; WaitFinal tells
// when it has), a finished or unknown one is left alone. When no worker
// answers, the client decides as a worker would: a waiting task is
// cancelled and will never run; for a task that is running, the error
// wraps jsbridge.ErrNoWorker. Without a deadline on ctx it waits ten
// seconds for an answer.
func (c *Client) Cancel(ctx context.Context, id string) (jsbridge.CancelReply, error) {
	if err := checkTaskID(id); err != nil {
		return jsbridge.CancelReply{}, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cancelTimeout)
		defer cancel()
	}
	r, err := jsbridge.RequestCancel(ctx, c.nc, c.names, id)
	if errors.Is(err, jsbridge.ErrNoWorker) && ctx.Err() == nil {
		return c.cancelUnattended(ctx, id, err)
	}
	return r, err
}

// cancelUnattended cancels a waiting task while no worker of the group
// runs: the queued status becomes cancelled (compare and set) and the
// cancel is recorded, so the worker that later pulls the task acks it
// without running it. noWorker is returned for a task that is running.
func (c *Client) cancelUnattended(ctx context.Context, id string, noWorker error) (jsbridge.CancelReply, error) {
	r := jsbridge.CancelReply{TaskID: id}
	store, err := c.statusStore(ctx)
	if err != nil {
		return r, err
	}
	group, now := c.names.Group, time.Now()
	st, changed, err := store.Transition(ctx, group, id, func(cur *schemas.TaskStatus) (*schemas.TaskStatus, bool) {
		return schemas.CancelWaiting(cur, now)
	})
	switch {
	case err != nil:
		return r, fmt.Errorf("cancel %s: %w", id, err)
	case st == nil:
		r.Result, r.Message = jsbridge.CancelUnknown, fmt.Sprintf("no task %s in group %s: nothing to cancel", id, group)
		return r, nil
	case st.State.Final() && !changed:
		r.Result, r.State, r.Worker = jsbridge.CancelFinished, string(st.State), st.Worker
		r.Message = fmt.Sprintf("task %s already finished (%s): nothing changed", id, st.State)
		return r, nil
	case !changed:
		return r, fmt.Errorf("task %s is %s on worker %s, which does not answer: %w", id, st.State, st.Worker, noWorker)
	}
	// The final status alone keeps the task from running; the mark is what
	// a worker also checks, as after its own decision.
	if err := store.MarkCancel(ctx, group, id); err != nil {
		c.log.Warn("cancel not recorded in the claims bucket", "task_id", id, "err", err)
	}
	r.Result, r.State = jsbridge.CancelDone, string(st.State)
	r.Message = fmt.Sprintf("no worker of group %s is running: task %s was waiting and is cancelled; it will not run", group, id)
	return r, nil
}
