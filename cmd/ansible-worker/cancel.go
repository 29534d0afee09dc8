package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ansible-worker/ansible-worker/client"
	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

func cancelCommand() *cli.Command {
	return &cli.Command{
		Name:      "cancel",
		Usage:     "cancel a task: a waiting one never runs (even while no worker runs), a running one is stopped; exit 0 when it ends cancelled",
		ArgsUsage: "TASK_ID",
		Flags: withCommon(groupFlag(),
			&cli.DurationFlag{Name: "wait", Value: time.Minute, Usage: "how long to wait for a running task to stop"}),
		Action: func(c *cli.Context) error {
			id, err := oneID(c)
			if err != nil {
				return err
			}
			return withClient(c, func(cl *client.Client) error {
				return cancelTask(c, cl, id)
			})
		},
	}
}

// cancelTask asks for the cancel and, for a running task, waits until it
// has stopped.
func cancelTask(c *cli.Context, cl *client.Client, id string) error {
	ctx, cancel := context.WithTimeout(c.Context, 10*time.Second)
	defer cancel()
	r, err := cl.Cancel(ctx, id)
	if err != nil {
		if errors.Is(err, jsbridge.ErrNoWorker) {
			return cli.Exit(fmt.Sprintf("%v: is the worker of group %s still running?", err, cl.Names().Group), exitUnreachable)
		}
		return cli.Exit(err.Error(), exitUnreachable)
	}
	fmt.Fprintln(c.App.ErrWriter, r.Message)
	switch r.Result {
	case jsbridge.CancelDone:
		return nil
	case jsbridge.CancelStopping:
		wait := c.Duration("wait")
		ctx, cancel := context.WithTimeout(c.Context, wait)
		defer cancel()
		st, err := cl.WaitFinal(ctx, id)
		if err != nil {
			return cli.Exit(fmt.Sprintf("task %s did not stop within %s: %v", id, wait, err), exitFailed)
		}
		fmt.Fprintf(c.App.ErrWriter, "task %s ended %s\n", id, st.State)
		if st.State == schemas.StateCancelled {
			return nil
		}
	}
	return cli.Exit("", exitFailed)
}
