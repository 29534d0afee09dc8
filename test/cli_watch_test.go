package test

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// `watch ID` of a task the group does not know says so and exits 2 instead
// of showing [queued] for ever; --wait-for-task waits for it to appear.
func TestWatchUnknownTask(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "watch", "-s", ns.url, "nope-2").CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, string(out))
	require.Equal(t, 2, ee.ExitCode(), string(out))
	require.Contains(t, string(out), "no task nope-2 in group production")
	require.Contains(t, string(out), "--wait-for-task")

	var watched syncBuffer
	w := exec.CommandContext(ctx, binary, "watch", "-s", ns.url, "--wait-for-task", "later-1")
	w.Stdout, w.Stderr = &watched, &watched
	require.NoError(t, w.Start())
	_, errOut, code := runCLI(t, "submit", "-s", ns.url, "--task-id", "later-1", "-p", "quick.yml", "-i", "inventory/hosts")
	require.Equal(t, 0, code, errOut)
	require.NoError(t, w.Wait(), watched.String())
	require.Contains(t, watched.String(), "TASK [Quick task]")
	require.Contains(t, watched.String(), "task later-1 success")
}

// Ctrl-C stops `submit --wait` and `watch ID`, not the task: they say how to
// follow or cancel it and exit 130. The command they print cancels it, and
// `tasks --state` takes the runner's spelling "canceled".
func TestCtrlCLeavesTheTaskRunning(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{})
	c := connectClient(t, ns.url)

	var cancelLine string
	for _, args := range [][]string{
		{"submit", "-s", ns.url, "--wait", "--task-id", "int-1", "-p", "slow.yml", "-i", "inventory/hosts", "-e", "seconds=60"},
		{"watch", "-s", ns.url, "int-1"},
	} {
		r := startPTY(t, 100, nil, args...)
		r.waitFor(t, 30*time.Second, "TASK [Wait]")
		_, err := r.term.Write([]byte{3}) // Ctrl-C
		require.NoError(t, err)
		require.Equal(t, 130, r.wait(t, 20*time.Second), r.screen.String())
		screen := r.screen.String()
		require.Contains(t, screen, "task int-1 goes on", args[0])
		require.Contains(t, screen, "ansible-worker watch -s "+ns.url+" int-1", args[0])
		require.Contains(t, screen, "ansible-worker cancel -s "+ns.url+" int-1", args[0])
		_, cancelLine, _ = strings.Cut(screen, "cancel it: ")
		cancelLine, _, _ = strings.Cut(cancelLine, "\r")

		st, err := c.status("production", "int-1")
		require.NoError(t, err)
		require.Equal(t, schemas.StateRunning, st.State, "the task goes on")
	}

	words := strings.Fields(cancelLine)
	require.Equal(t, "ansible-worker", words[0], cancelLine)
	_, errOut, code := runCLI(t, words[1:]...)
	require.Equal(t, 0, code, errOut)
	require.Equal(t, schemas.StateCancelled, c.waitFinal(t, "production", "int-1", 30*time.Second).State)

	out, errOut, code := runCLI(t, "tasks", "-s", ns.url, "--state", "canceled")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "int-1")
}

// `tasks --state` refuses a state that does not exist, naming the states;
// `tasks` and `watch` print a header row on a terminal, none into a pipe or
// with --json.
func TestTasksStateAndHeaders(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{})

	out, errOut, code := runCLI(t, "tasks", "-s", ns.url, "--state", "bogus")
	require.Equal(t, 2, code, out)
	require.Contains(t, errOut, `unknown state "bogus"`)
	require.Contains(t, errOut, "queued, running, success, failed, cancelled, timeout")

	_, errOut, code = runCLI(t, "submit", "-s", ns.url, "--wait", "--task-id", "head-1", "-p", "quick.yml", "-i", "inventory/hosts")
	require.Equal(t, 0, code, errOut)

	r := startPTY(t, 200, nil, "tasks", "-s", ns.url)
	require.Equal(t, 0, r.wait(t, 30*time.Second), r.screen.String())
	lines := strings.Split(strings.TrimSpace(r.screen.String()), "\r\n")
	require.Len(t, lines, 2, r.screen.String())
	require.Equal(t, []string{"CREATED", "TASK", "STATE", "DURATION"}, strings.Fields(lines[0])[:4])
	require.Equal(t, "head-1", strings.Fields(lines[1])[1])

	out, errOut, code = runCLI(t, "tasks", "-s", ns.url)
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "head-1", strings.Fields(out)[1], "no header into a pipe: %q", out)

	r = startPTY(t, 200, nil, "tasks", "-s", ns.url, "--json")
	require.Equal(t, 0, r.wait(t, 30*time.Second), r.screen.String())
	var list []schemas.TaskStatus
	require.NoError(t, json.Unmarshal([]byte(strings.ReplaceAll(r.screen.String(), "\r", "")), &list))
	require.Len(t, list, 1)

	r = startPTY(t, 200, nil, "watch", "-s", ns.url)
	r.waitFor(t, 30*time.Second, "head-1")
	require.True(t, strings.HasPrefix(r.screen.String(), "CREATED "), r.screen.String())
}
