package client

import (
	"context"
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
// answers, the error wraps jsbridge.ErrNoWorker. Without a deadline on ctx
// it waits ten seconds for an answer.
func (c *Client) Cancel(ctx context.Context, id string) (jsbridge.CancelReply, error) {
	if err := checkTaskID(id); err != nil {
		return jsbridge.CancelReply{}, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cancelTimeout)
		defer cancel()
	}
	return jsbridge.RequestCancel(ctx, c.nc, c.names, id)
}
