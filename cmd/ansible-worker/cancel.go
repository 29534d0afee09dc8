package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

func cancelCommand() *cli.Command {
	return &cli.Command{
		Name:      "cancel",
		Usage:     "cancel a task: a waiting one never runs, a running one is stopped; exit 0 when it ends cancelled",
		ArgsUsage: "TASK_ID",
		Flags: withCommon(groupFlag(),
			&cli.DurationFlag{Name: "wait", Value: time.Minute, Usage: "how long to wait for a running task to stop"}),
		Action: func(c *cli.Context) error {
			id, err := oneID(c)
			if err != nil {
				return err
			}
			return withClient(c, func(cl *client) error {
				ctx, cancel := context.WithTimeout(c.Context, 10*time.Second)
				defer cancel()
				r, err := jsbridge.RequestCancel(ctx, cl.nc, cl.names, id)
				if err != nil {
					if errors.Is(err, jsbridge.ErrNoWorker) {
						return cli.Exit(fmt.Sprintf("%v: is a worker of group %s running?", err, cl.names.Group), exitUnreachable)
					}
					return cli.Exit(err.Error(), exitUnreachable)
				}
				fmt.Fprintln(c.App.ErrWriter, r.Message)
				switch r.Result {
				case jsbridge.CancelDone:
					return nil
				case jsbridge.CancelStopping:
					st, err := cl.waitFinal(c.Context, id, c.Duration("wait"))
					if err != nil {
						return cli.Exit(err.Error(), exitFailed)
					}
					fmt.Fprintf(c.App.ErrWriter, "task %s ended %s\n", id, st.State)
					if st.State == schemas.StateCancelled {
						return nil
					}
					return cli.Exit("", exitFailed)
				}
				return cli.Exit("", exitFailed)
			})
		},
	}
}

// waitFinal follows a task's status until it is final or wait passes.
func (cl *client) waitFinal(ctx context.Context, id string, wait time.Duration) (*schemas.TaskStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	st, err := jsbridge.Follow(ctx, cl.js, cl.names, id, false, func(jsbridge.Update) {})
	if err != nil {
		return nil, fmt.Errorf("task %s did not stop within %s: %w", id, wait, err)
	}
	return st, nil
}
