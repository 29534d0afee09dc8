package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ansible-worker/ansible-worker/client"
)

// unattendedAfter is how long a followed task may stay queued before the
// user is told that no worker of its group runs.
const unattendedAfter = 3 * time.Second

// warnUnattended says once on stderr when task id stays queued while no
// worker of its group runs; the wait goes on, since a worker may start. The
// returned function stops looking.
func warnUnattended(c *cli.Context, cl *client.Client, id string) func() {
	ctx, cancel := context.WithCancel(c.Context)
	done := make(chan struct{})
	go func() {
		defer close(done)
		alone, err := cl.Unattended(ctx, id, unattendedAfter)
		if err != nil || !alone {
			return
		}
		wipe := ""
		if isTerminal(c.App.ErrWriter) {
			wipe = "\r\033[K" // over the progress line, which redraws itself
		}
		fmt.Fprintf(c.App.ErrWriter, "%swarning: no worker of group %s is running: task %s stays queued until one starts; still waiting\n",
			wipe, cl.Names().Group, id)
	}()
	return func() { cancel(); <-done }
}
