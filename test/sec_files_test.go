package test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// A worker whose data directory (where the callback plugin that runs in every
// playbook lives) is writable by other users refuses to start, and says why.
func TestSecFilesDataDirRefused(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	cfg := writeConfig(t, ns.url, workerOpts{})
	data := filepath.Join(filepath.Dir(cfg), "data")
	require.NoError(t, os.Mkdir(data, 0o700))
	require.NoError(t, os.Chmod(data, 0o777))

	errOut, code := runExits(t, 30*time.Second, "run", "-c", cfg)
	require.Equal(t, 2, code, errOut)
	require.Contains(t, errOut, "worker.data_dir "+data+" is not private to the worker's user")
	require.Contains(t, errOut, data+" is writable by group or others (mode 0777")
	entries, err := os.ReadDir(data)
	require.NoError(t, err)
	require.Empty(t, entries, "no callback plugin installed in it")
}

// runExits runs the ansible-worker binary, which must exit within total, and
// returns its standard error and exit code.
func runExits(t *testing.T, total time.Duration, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), total)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "ansible-worker %v did not exit within %s:\n%s", args, total, errOut.String())
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		require.True(t, ok, "run %v: %v", args, err)
		code = ee.ExitCode()
	}
	return errOut.String(), code
}

// Without worker.data_dir the worker keeps its files in its user's cache
// directory, private to it, and runs playbooks with them.
func TestSecFilesDefaultDataDir(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	ns := startServer(t)
	cfg := writeConfig(t, ns.url, workerOpts{Extra: "worker_id: default-dd"})
	b, err := os.ReadFile(cfg)
	require.NoError(t, err)
	var kept []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "data_dir:") {
			kept = append(kept, l)
		}
	}
	require.Len(t, kept, len(strings.Split(string(b), "\n"))-1)
	require.NoError(t, os.WriteFile(cfg, []byte(strings.Join(kept, "\n")), 0o600))

	logs := startConfigured(t, cfg, "HOME="+home, "XDG_CACHE_HOME=")
	_, errOut, code := runCLI(t, "submit", "-s", ns.url, "--task-id", "default-dd", "-p", "quick.yml",
		"-i", "inventory/hosts", "--wait")
	require.Equal(t, 0, code, "%s\n%s", errOut, logs.String())
	c := connectClient(t, ns.url)
	require.Equal(t, schemas.StateSuccess, c.waitFinal(t, "production", "default-dd", 30*time.Second).State)

	data := filepath.Join(home, ".cache", "ansible-worker")
	st, err := os.Stat(data)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), st.Mode().Perm())
	plugins, err := filepath.Glob(filepath.Join(data, "callback-*", "ansible_worker.py"))
	require.NoError(t, err)
	require.Len(t, plugins, 1)
}

// startConfigured runs `ansible-worker run -c cfg` with env added, waits
// until it has started and returns its log; it is stopped at the test's end.
func startConfigured(t *testing.T, cfg string, env ...string) *syncBuffer {
	t.Helper()
	wp := &workerProc{id: filepath.Base(cfg), logs: &syncBuffer{}, done: make(chan struct{})}
	wp.cmd = exec.Command(binary, "run", "-c", cfg)
	ready := newNotifySocket(t)
	wp.cmd.Env = append(append(os.Environ(), env...), ready.env())
	wp.cmd.Stdout, wp.cmd.Stderr = wp.logs, wp.logs
	require.NoError(t, wp.cmd.Start())
	go func() { _ = wp.cmd.Wait(); close(wp.done) }()
	t.Cleanup(func() {
		wp.stop(t)
		if t.Failed() {
			t.Logf("worker log:\n%s", wp.logs.String())
		}
	})
	ready.wait(t, 20*time.Second, wp.done, wp.logs.String)
	return wp.logs
}

// The playbook supervisors a worker starts ahead of time have the
// environment playbooks get: neither the RUNNER_NATS_* variables nor those
// the configuration file referred to are in their /proc/<pid>/environ.
func TestSecFilesSupervisorEnv(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	secrets := map[string]string{
		"AW_SUP_SECRET":           "sup-secret-from-config-7781",
		"RUNNER_NATS_CLIENT_NAME": "sup-secret-nats-name-7782",
	}
	var env []string
	for k, v := range secrets {
		env = append(env, k+"="+v)
	}
	wp := startWorker(t, ns.url, workerOpts{Concurrency: 2, TopExtra: "mqtt:\n  password: ${AW_SUP_SECRET}",
		Env: append(env, "AW_SUP_PLAIN=visible-7783")})

	own, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", wp.cmd.Process.Pid))
	require.NoError(t, err)
	for k, v := range secrets {
		require.Contains(t, string(own), k+"="+v, "the worker itself has the secret")
	}
	var sups []int
	checkFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		sups = supervisorsOf(wp.cmd.Process.Pid)
		if len(sups) < 2 {
			return fmt.Errorf("supervisors of worker %d: %v", wp.cmd.Process.Pid, sups)
		}
		return nil
	})
	for _, pid := range sups {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		require.NoError(t, err)
		environ := "\x00" + string(b)
		require.Contains(t, environ, "\x00AW_SUP_PLAIN=visible-7783\x00", "other variables are kept")
		for k, v := range secrets {
			require.NotContains(t, environ, "\x00"+k+"=", "supervisor %d", pid)
			require.NotContains(t, environ, v, "supervisor %d", pid)
		}
	}
}

// supervisorsOf returns the pids of the `__supervise` children of pid.
func supervisorsOf(pid int) []int {
	var out []int
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		stat, err := os.ReadFile(p + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and ")".
		i := strings.LastIndex(string(stat), ")")
		fields := strings.Fields(string(stat)[i+1:])
		if i < 0 || len(fields) < 2 || fields[1] != strconv.Itoa(pid) {
			continue
		}
		cmdline, _ := os.ReadFile(p + "/cmdline")
		if strings.Contains(string(cmdline), "\x00__supervise\x00") {
			n, _ := strconv.Atoi(filepath.Base(p))
			out = append(out, n)
		}
	}
	return out
}
