package client

import (
	"context"
	"time"

	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// Workers returns the live workers of group ("": the client's group) under
// the client's topic prefix: those that answer a ping of the micro service
// jsbridge.ServiceName within jsbridge.DiscoveryWait (or before ctx's
// deadline). An empty list means no worker of the group runs.
func (c *Client) Workers(ctx context.Context, group string) ([]jsbridge.WorkerInfo, error) {
	names := c.names
	if group != "" {
		if err := schemas.CheckID("group", group); err != nil {
			return nil, withKind(ErrInvalid, err)
		}
		names.Group = group
	}
	return jsbridge.Workers(ctx, c.nc, names)
}

// Unattended waits until task id has been queued for at least after, then
// every after again, and returns true as soon as the task is still queued
// and no worker of the group is running: nobody will take it until one
// starts. It returns false once the task leaves the queue, and ctx's error
// when ctx ends first.
func (c *Client) Unattended(ctx context.Context, id string, after time.Duration) (bool, error) {
	t := time.NewTicker(after)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-t.C:
		}
		st, err := c.Status(ctx, id)
		if err != nil {
			return false, err
		}
		if st.State != schemas.StateQueued {
			return false, nil
		}
		ws, err := c.Workers(ctx, "")
		if err != nil {
			return false, err
		}
		if len(ws) == 0 {
			return true, nil
		}
	}
}

// AllWorkers returns the live workers of every group under the client's
// topic prefix, with what each did so far: those that answer within
// jsbridge.DiscoveryWait (or before ctx's deadline).
func (c *Client) AllWorkers(ctx context.Context) ([]jsbridge.WorkerInfo, error) {
	return jsbridge.AllWorkers(ctx, c.nc, c.names.Prefix)
}
