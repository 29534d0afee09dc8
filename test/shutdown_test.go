package test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// waitRunning waits until a task is running on some worker.
func (c *client) waitRunning(t testing.TB, group, id string) *schemas.TaskStatus {
	t.Helper()
	var st *schemas.TaskStatus
	checkFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		s, err := c.status(group, id)
		if err != nil {
			return err
		}
		if s.State != schemas.StateRunning {
			return fmt.Errorf("task %s is %s", id, s.State)
		}
		st = s
		return nil
	})
	return st
}

// SIGTERM lets a running task finish within the grace period; the worker
// takes no new task meanwhile and exits after.
func TestShutdownFinishesRunningTask(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	w := startWorker(t, ns.url, workerOpts{Extra: "shutdown_grace: 60"})
	c := connectClient(t, ns.url)

	_, errOut, code := runCLI(t, "submit", "-s", ns.url, "--task-id", "graceful-1", "-p", "steps.yml", "-i",
		"inventory/hosts", "-e", "pause=2")
	require.Equal(t, 0, code, errOut)
	c.waitRunning(t, "production", "graceful-1")
	require.NoError(t, w.cmd.Process.Signal(syscall.SIGTERM))
	// Submitted after the signal: must not be taken by the stopping worker.
	_, errOut, code = runCLI(t, "submit", "-s", ns.url, "--task-id", "after-stop", "-p", "quick.yml", "-i", "inventory/hosts")
	require.Equal(t, 0, code, errOut)

	select {
	case <-w.done:
	case <-time.After(60 * time.Second):
		t.Fatal("worker did not exit")
	}
	require.Equal(t, 0, w.cmd.ProcessState.ExitCode(), w.logs.String())
	st, err := c.status("production", "graceful-1")
	require.NoError(t, err)
	require.Equal(t, schemas.StateSuccess, st.State, st.Err())
	st, err = c.status("production", "after-stop")
	require.NoError(t, err)
	require.Equal(t, schemas.StateQueued, st.State, "a stopping worker takes no new task")
}

// When the grace period ends first, the running task is stopped and handed
// back: another worker of the group takes it and runs it to the end. A
// hand-back does not count toward max_deliver.
func TestShutdownHandsTaskBack(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	a := startWorker(t, ns.url, workerOpts{Extra: "shutdown_grace: 1\nkill_grace: 1\nmax_deliver: 1"})
	c := connectClient(t, ns.url)

	_, errOut, code := runCLI(t, "submit", "-s", ns.url, "--task-id", "handback-1", "-p", "steps.yml", "-i",
		"inventory/hosts", "-e", "pause=4")
	require.Equal(t, 0, code, errOut)
	st := c.waitRunning(t, "production", "handback-1")
	require.Equal(t, a.id, st.Worker)
	b := startWorker(t, ns.url, workerOpts{Extra: "max_deliver: 1"})
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-a.done:
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not exit")
	}
	st = c.waitFinal(t, "production", "handback-1", 60*time.Second)
	require.Equal(t, schemas.StateSuccess, st.State, st.Err())
	require.Equal(t, b.id, st.Worker)
	require.Equal(t, 2, st.Attempt)
	require.Contains(t, a.logs.String(), "task handed back")
}
