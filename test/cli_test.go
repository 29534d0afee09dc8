package test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// validate prints the effective configuration with every secret masked and
// exits 0; a bad configuration exits 2 naming the problem.
func TestCLIValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`worker:
  group_name: prod-eu
  playbook_directory: `+playbookDir(t)+`
mqtt:
  password: mqtt-s3cret
nats:
  servers: ["nats://127.0.0.1:4222"]
  username: worker
  password: ${NATS_PW}
`), 0o600))
	for _, args := range [][]string{{"validate", "-c", cfg}, {"-c", cfg, "--validate"}} {
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), "NATS_PW=nats-s3cret")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		require.Contains(t, string(out), "group_name: prod-eu")
		require.Contains(t, string(out), "******")
		require.NotContains(t, string(out), "nats-s3cret")
		require.NotContains(t, string(out), "mqtt-s3cret")
	}

	require.NoError(t, os.WriteFile(cfg, []byte("worker:\n  group_nme: x\n"), 0o600))
	_, errOut, code := runCLI(t, "validate", "-c", cfg)
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "group_nme")

	require.NoError(t, os.WriteFile(cfg, []byte("nats:\n  password: ${UNSET_FOR_TEST}\n"), 0o600))
	_, errOut, code = runCLI(t, "validate", "-c", cfg)
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "UNSET_FOR_TEST")
}

// submit refuses a bad request locally (exit 2, nothing queued), reports an
// unreachable server with exit 5, and refuses a task id already used.
func TestCLISubmitErrors(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{})
	c := connectClient(t, ns.url)

	_, errOut, code := runCLI(t, "submit", "-s", ns.url, "--task-id", "v9", "-p", "quick.yml", "-i", "inventory/hosts", "--verbosity", "9")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "verbosity")
	_, err := c.status("production", "v9")
	require.Error(t, err, "nothing was submitted")

	_, errOut, code = runCLI(t, "submit", "-s", "nats://127.0.0.1:1", "-p", "quick.yml", "-i", "inventory/hosts")
	require.Equal(t, 5, code, errOut)
	require.Contains(t, errOut, "127.0.0.1:1")

	_, errOut, code = runCLI(t, "submit", "-s", ns.url, "--task-id", "twice", "-p", "quick.yml", "-i", "inventory/hosts", "--wait")
	require.Equal(t, 0, code, errOut)
	_, errOut, code = runCLI(t, "submit", "-s", ns.url, "--task-id", "twice", "-p", "quick.yml", "-i", "inventory/hosts")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "already exists")

	_, errOut, code = runCLI(t, "submit", "-s", ns.url, "-p", "quick.yml", "-i", "inventory/hosts", "-e", "novalue")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "novalue")
}

// submit builds the task from a JSON file and flags (flags win), takes extra
// vars as k=v, JSON or @file, and --wait exits 3 on timeout.
func TestCLISubmitFileAndExtraVars(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{})
	c := connectClient(t, ns.url)

	dir := t.TempDir()
	file := filepath.Join(dir, "task.json")
	require.NoError(t, os.WriteFile(file, []byte(`{"task_id":"from-file","playbook":"nope.yml","inventory":"inventory/hosts",
		"extra_vars":{"payload":"file","keep":1}}`), 0o600))
	vars := filepath.Join(dir, "vars.yml")
	require.NoError(t, os.WriteFile(vars, []byte("extra: from-yaml\n"), 0o600))
	out, errOut, code := runCLI(t, "submit", "-s", ns.url, "-p", "vars.yml", "-e", "payload=flag",
		"-e", `{"json": [1, 2]}`, "-e", "@"+vars, "--wait", "--quiet", file)
	require.Equal(t, 0, code, errOut)
	require.NotContains(t, out, "TASK [", "--quiet prints no playbook output")
	st, err := c.status("production", "from-file")
	require.NoError(t, err)
	require.Equal(t, schemas.StateSuccess, st.State, st.Err())
	require.Equal(t, "flag", st.Output["payload"])

	_, errOut, code = runCLI(t, "submit", "-s", ns.url, "-p", "slow.yml", "-i", "inventory/hosts", "-e", "seconds=30",
		"--timeout", "1", "--wait")
	require.Equal(t, 3, code, errOut)
	require.Contains(t, errOut, "timeout")
}

// status, tasks and watch read what the workers report.
func TestCLIStatusTasksWatch(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	watch := exec.CommandContext(ctx, binary, "watch", "-s", ns.url)
	stdout, err := watch.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, watch.Start())
	defer func() { _ = watch.Process.Kill(); _ = watch.Wait() }()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()

	_, errOut, code := runCLI(t, "submit", "-s", ns.url, "--task-id", "ok-1", "-p", "quick.yml", "-i", "inventory/hosts", "--wait")
	require.Equal(t, 0, code, errOut)
	_, errOut, code = runCLI(t, "submit", "-s", ns.url, "--task-id", "bad-1", "-p", "fail.yml", "-i", "inventory/hosts", "--wait")
	require.Equal(t, 1, code, errOut)

	seen := map[string]bool{}
	deadline := time.After(20 * time.Second)
	for !(seen["ok-1 success"] && seen["bad-1 failed"]) {
		select {
		case l, ok := <-lines:
			require.True(t, ok, "watch ended")
			f := strings.Fields(l)
			if len(f) > 2 {
				seen[f[1]+" "+f[2]] = true
			}
		case <-deadline:
			t.Fatalf("watch did not show both results: %v", seen)
		}
	}

	out, errOut, code := runCLI(t, "status", "-s", ns.url, "ok-1")
	require.Equal(t, 0, code, errOut)
	var st schemas.TaskStatus
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.Equal(t, schemas.StateSuccess, st.State)
	_, _, code = runCLI(t, "status", "-s", ns.url, "nope")
	require.Equal(t, 2, code)

	out, errOut, code = runCLI(t, "tasks", "-s", ns.url, "--json")
	require.Equal(t, 0, code, errOut)
	var list []schemas.TaskStatus
	require.NoError(t, json.Unmarshal([]byte(out), &list))
	require.Len(t, list, 2)
	out, _, code = runCLI(t, "tasks", "-s", ns.url, "--state", "failed")
	require.Equal(t, 0, code)
	require.Contains(t, out, "bad-1")
	require.NotContains(t, out, "ok-1")

	// watch ID on a finished task replays its output and exits by its result.
	out, errOut, code = runCLI(t, "watch", "-s", ns.url, "bad-1")
	require.Equal(t, 1, code, errOut)
	require.Contains(t, out, "TASK [Check the disk]")
	require.Contains(t, errOut, "disk is full")
}

// On a terminal, submit --wait draws a progress line (state, time, counts,
// current task) under the live output and clears it at the end.
func TestSubmitWaitProgressLineOnTerminal(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{})

	// script(1) gives the command a pseudo-terminal.
	cmd := exec.Command("script", "-qfec", binary+" submit -s "+ns.url+
		" --wait --task-id tty-1 -p steps.yml -i inventory/hosts -e pause=2", "/dev/null")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	s := string(out)
	require.Contains(t, s, "\r\x1b[K[running]", "a progress line drawn in place")
	require.Contains(t, s, "task: Pause", "it names the current task")
	require.GreaterOrEqual(t, strings.Count(s, "task: Pause"), 4, "redrawn while the 2 s pause runs: its clock moves")
	require.Contains(t, s, "TASK [Step three]")
	require.Contains(t, s, "task tty-1 success")
}
