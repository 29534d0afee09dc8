package test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// noWorkerWarning is what `submit --wait` says when nobody will take the task.
const noWorkerWarning = "no worker of group %s is running"

// startCLI runs the ansible-worker binary in the background; the returned
// buffers fill as it writes, and the test's end stops it.
func startCLI(t *testing.T, args ...string) (out, errOut *syncBuffer, done chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, binary, args...)
	out, errOut, done = &syncBuffer{}, &syncBuffer{}, make(chan struct{})
	cmd.Stdout, cmd.Stderr = out, errOut
	require.NoError(t, cmd.Start())
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return out, errOut, done
}

// `submit --wait` to a group without a worker says so within a few seconds
// and keeps waiting; with a worker of the group, busy, it says nothing. The
// worker is a NATS micro service that `nats micro ls` lists.
func TestCLINoWorkerWarning(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	wp := startWorker(t, ns.url, workerOpts{})

	start := time.Now()
	_, errOut, done := startCLI(t, "submit", "-s", ns.url, "--wait", "-g", "prod", "--task-id", "nobody-1",
		"-p", "quick.yml", "-i", "inventory/hosts")
	checkFor(t, 15*time.Second, 50*time.Millisecond, func() error {
		if !strings.Contains(errOut.String(), fmt.Sprintf(noWorkerWarning, "prod")) {
			return fmt.Errorf("no warning yet: %q", errOut.String())
		}
		return nil
	})
	require.Less(t, time.Since(start), 10*time.Second)
	select {
	case <-done:
		t.Fatalf("submit --wait stopped waiting: %s", errOut.String())
	default:
	}

	out, err := natsCLI(t, ns.url, "micro", "ls")
	require.NoError(t, err, out)
	require.Contains(t, out, "ansible-worker")
	out, err = natsCLI(t, ns.url, "micro", "info", "ansible-worker", "--json")
	require.NoError(t, err, out)
	require.Contains(t, out, `"worker_id": "`+wp.id+`"`)
	require.Contains(t, out, `"group": "production"`)

	// The only worker of production is busy: the task waits longer than
	// the warning's delay, and no warning comes, for a worker runs.
	_, errRun, code := runCLI(t, "submit", "-s", ns.url, "--task-id", "busy-1", "-p", "slow.yml", "-i", "inventory/hosts",
		"-e", "seconds=6")
	require.Equal(t, 0, code, errRun)
	connectClient(t, ns.url).waitRunning(t, "production", "busy-1")
	_, errRun, code = runCLI(t, "submit", "-s", ns.url, "--wait", "--task-id", "after-busy", "-p", "quick.yml", "-i", "inventory/hosts")
	require.Equal(t, 0, code, errRun)
	require.NotContains(t, errRun, "no worker")
}

// `cancel` of a waiting task while no worker of its group runs cancels it:
// exit 0, and the worker that starts later never runs it.
func TestCLICancelWithoutWorker(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{}) // of another group
	c := connectClient(t, ns.url)

	_, errOut, code := runCLI(t, "submit", "-s", ns.url, "-g", "prod", "--task-id", "lonely-1", "-p", "quick.yml", "-i", "inventory/hosts")
	require.Equal(t, 0, code, errOut)
	_, errOut, code = runCLI(t, "cancel", "-s", ns.url, "-g", "prod", "lonely-1")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, errOut, fmt.Sprintf(noWorkerWarning, "prod"))
	require.Contains(t, errOut, "will not run")
	st, err := c.status("prod", "lonely-1")
	require.NoError(t, err)
	require.Equal(t, schemas.StateCancelled, st.State)

	startWorker(t, ns.url, workerOpts{Group: "prod"})
	checkFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		out, err := natsCLI(t, ns.url, "stream", "subjects", "ANSIBLE_TASKS", "--json")
		if err != nil || strings.Contains(out, "ansible.prod.tasks") {
			return fmt.Errorf("task still queued: %v %s", err, out)
		}
		return nil
	})
	st, err = c.status("prod", "lonely-1")
	require.NoError(t, err)
	require.Equal(t, schemas.StateCancelled, st.State)
	require.Empty(t, c.runnerMessages(t, "lonely-1"), "the task never ran")
}

// On a server no worker ever used, `submit` creates the streams and buckets
// and queues the task, which the first worker runs.
func TestCLISubmitFreshServer(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	_, errOut, code := runCLI(t, "submit", "-s", ns.url, "--task-id", "first-1", "-p", "quick.yml", "-i", "inventory/hosts")
	require.Equal(t, 0, code, errOut)
	c := connectClient(t, ns.url)
	st, err := c.status("production", "first-1")
	require.NoError(t, err)
	require.Equal(t, schemas.StateQueued, st.State)

	startWorker(t, ns.url, workerOpts{})
	require.Equal(t, schemas.StateSuccess, c.waitFinal(t, "production", "first-1", time.Minute).State)
}

// On a server nothing ever used, `watch ID`, `status`, `tasks` and `watch`
// answer as for an empty group; `watch` then shows the first task as it
// comes.
func TestCLIReadFreshServer(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	_, errOut, code := runCLI(t, "watch", "-s", ns.url, "nothing-1")
	require.Equal(t, 2, code, errOut)
	require.Contains(t, errOut, "no task nothing-1 in group production")
	_, errOut, code = runCLI(t, "status", "-s", startServer(t).url, "nothing-1")
	require.Equal(t, 2, code, errOut)
	require.Contains(t, errOut, "no task nothing-1 in group production")
	out, errOut, code := runCLI(t, "tasks", "-s", startServer(t).url)
	require.Equal(t, 0, code, errOut)
	require.NotContains(t, out, "ok=", "no task rows")

	url := startServer(t).url
	watchOut, watchErr, done := startCLI(t, "watch", "-s", url)
	_, errOut, code = runCLI(t, "submit", "-s", url, "--task-id", "seen-1", "-p", "quick.yml", "-i", "inventory/hosts")
	require.Equal(t, 0, code, errOut)
	checkFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		select {
		case <-done:
			return fmt.Errorf("watch ended: %s", watchErr.String())
		default:
		}
		if !strings.Contains(watchOut.String(), "seen-1") {
			return fmt.Errorf("watch shows no seen-1: %q %q", watchOut.String(), watchErr.String())
		}
		return nil
	})
}
