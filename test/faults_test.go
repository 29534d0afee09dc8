package test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// processesWith lists the pids whose command line contains every arg.
func processesWith(args ...string) []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		parts := strings.Split(string(b), "\x00")
		all := true
		for _, a := range args {
			found := false
			for _, part := range parts {
				if part == a {
					found = true
				}
			}
			all = all && found
		}
		if all {
			out = append(out, p)
		}
	}
	return out
}

// waitStatus waits until the task's status satisfies ok.
func (c *client) waitStatus(t testing.TB, group, id string, total time.Duration, ok func(*schemas.TaskStatus) error) *schemas.TaskStatus {
	t.Helper()
	var st *schemas.TaskStatus
	checkFor(t, total, 50*time.Millisecond, func() error {
		s, err := c.status(group, id)
		if err != nil {
			return err
		}
		if err := ok(s); err != nil {
			return err
		}
		st = s
		return nil
	})
	return st
}

func runningAttempt(n int) func(*schemas.TaskStatus) error {
	return func(s *schemas.TaskStatus) error {
		if s.State != schemas.StateRunning || s.Attempt != n {
			return fmt.Errorf("state %s attempt %d", s.State, s.Attempt)
		}
		return nil
	}
}

// A worker killed with SIGKILL mid-task leaves no playbook process behind;
// another worker of the group gets the task within the ack wait and runs it
// to the end, as attempt 2.
func TestWorkerCrashRedelivers(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	a := startWorker(t, ns.url, workerOpts{Extra: "ack_wait: 3"})
	c := connectClient(t, ns.url)
	marker := filepath.Join(t.TempDir(), "marker")
	hang := "61.37"

	_, errOut, code := runCLI(t, "submit", "-s", ns.url, "--task-id", "crash-1", "-p", "crash.yml", "-i",
		"inventory/hosts", "-e", "marker="+marker+" hang="+hang)
	require.Equal(t, 0, code, errOut)
	checkFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		if len(processesWith("sleep", hang)) == 0 {
			return fmt.Errorf("playbook not hanging yet")
		}
		return nil
	})
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGKILL))
	<-a.done
	checkFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if left := processesWith("sleep", hang); len(left) > 0 {
			return fmt.Errorf("orphans of the killed worker: %v", left)
		}
		return nil
	})

	start := time.Now()
	b := startWorker(t, ns.url, workerOpts{Extra: "ack_wait: 3"})
	st := c.waitFinal(t, "production", "crash-1", 60*time.Second)
	require.Equal(t, schemas.StateSuccess, st.State, st.Err())
	require.Equal(t, 2, st.Attempt)
	require.Equal(t, b.id, st.Worker)
	require.Less(t, time.Since(start), 30*time.Second)
}

// A task that never completes is delivered max_deliver times, then ends
// failed with the reason and leaves the queue.
func TestMaxDeliverEndsTask(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	opts := workerOpts{Extra: "ack_wait: 2\nmax_deliver: 2"}
	c := connectClient(t, ns.url)
	hang := "62.41"
	marker := filepath.Join(t.TempDir(), "marker")

	w := startWorker(t, ns.url, opts)
	_, errOut, code := runCLI(t, "submit", "-s", ns.url, "--task-id", "doomed", "-p", "crash.yml", "-i",
		"inventory/hosts", "-e", "marker="+marker+" hang="+hang+" always_hang=true")
	require.Equal(t, 0, code, errOut)
	for attempt := 1; attempt <= 2; attempt++ {
		c.waitStatus(t, "production", "doomed", 30*time.Second, runningAttempt(attempt))
		checkFor(t, 30*time.Second, 50*time.Millisecond, func() error {
			if len(processesWith("sleep", hang)) == 0 {
				return fmt.Errorf("not hanging yet")
			}
			return nil
		})
		require.NoError(t, w.cmd.Process.Signal(syscall.SIGKILL))
		<-w.done
		w = startWorker(t, ns.url, opts)
	}
	st := c.waitFinal(t, "production", "doomed", 30*time.Second)
	require.Equal(t, schemas.StateFailed, st.State)
	require.Contains(t, st.Err(), "gave up after 2 deliveries")
	require.Equal(t, 3, st.Attempt)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := c.js.Stream(ctx, jsbridge.TasksStream)
	require.NoError(t, err)
	checkFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter("ansible.production.tasks"))
		if err != nil {
			return err
		}
		if n := info.State.Subjects["ansible.production.tasks"]; n != 0 {
			return fmt.Errorf("%d tasks still queued", n)
		}
		return nil
	})
	require.Empty(t, processesWith("sleep", hang))
}
