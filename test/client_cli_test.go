package test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// -c FILE and -s URL work the same before the command name as after it,
// for every command, as the README shows them.
func TestCLIConfigBeforeCommand(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	cfg := writeConfig(t, ns.url, workerOpts{Group: "before", Extra: "worker_id: before-w"})

	wp := &workerProc{id: "before-w", logs: &syncBuffer{}, done: make(chan struct{})}
	wp.cmd = exec.Command(binary, "-c", cfg, "run")
	ready := newNotifySocket(t)
	wp.cmd.Env = append(os.Environ(), ready.env())
	wp.cmd.Stdout, wp.cmd.Stderr = wp.logs, wp.logs
	require.NoError(t, wp.cmd.Start())
	go func() { _ = wp.cmd.Wait(); close(wp.done) }()
	t.Cleanup(func() { wp.stop(t) })
	ready.wait(t, 20*time.Second, wp.done, wp.logs.String)
	// The log reaches the buffer through a pipe: it may come after READY.
	checkFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		if !strings.Contains(wp.logs.String(), "group=before") {
			return fmt.Errorf("the worker does not serve the file's group: %s", wp.logs.String())
		}
		return nil
	})

	out, errOut, code := runCLI(t, "-c", cfg, "validate")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "group_name: before")

	_, errOut, code = runCLI(t, "-c", cfg, "submit", "--wait", "--task-id", "before-1", "-p", "quick.yml", "-i", "inventory/hosts")
	require.Equal(t, 0, code, errOut)
	out, errOut, code = runCLI(t, "-c", cfg, "status", "before-1")
	require.Equal(t, 0, code, errOut)
	var st schemas.TaskStatus
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.Equal(t, "before", st.Group)
	require.Equal(t, schemas.StateSuccess, st.State)

	out, errOut, code = runCLI(t, "-c", cfg, "tasks")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "before-1")
	_, errOut, code = runCLI(t, "-c", cfg, "watch", "--quiet", "before-1")
	require.Equal(t, 0, code, errOut)
	_, errOut, code = runCLI(t, "-c", cfg, "cancel", "before-1")
	require.Equal(t, 1, code, errOut)
	require.Contains(t, errOut, "already finished")

	// -s before the command, no file: the server of the flag, the default
	// group's prefix, the group of --group.
	out, errOut, code = runCLI(t, "-s", ns.url, "status", "--group", "before", "before-1")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `"task_id": "before-1"`)
	// After the command, the command's own flag still wins.
	_, errOut, code = runCLI(t, "-s", "nats://127.0.0.1:1", "status", "-s", ns.url, "--group", "before", "before-1")
	require.Equal(t, 0, code, errOut)
}

// authServer starts a nats-server that wants a user name and password.
func authServer(t *testing.T) string {
	t.Helper()
	o := &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, Username: "worker", Password: "right"}
	s, err := server.NewServer(o)
	require.NoError(t, err)
	go s.Start()
	require.True(t, s.ReadyForConnections(10*time.Second), "nats-server not ready")
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s.ClientURL()
}

// Exit code 5 means only that no server could be reached; TLS, credentials
// and nkey settings that cannot be read or are refused exit 2.
func TestCLIConnectSettingsExit2(t *testing.T) {
	t.Parallel()
	url := authServer(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.txt")
	require.NoError(t, os.WriteFile(garbage, []byte("not a credential\n"), 0o600))
	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	seed, err := kp.Seed()
	require.NoError(t, err)
	seedFile := filepath.Join(dir, "user.nk")
	require.NoError(t, os.WriteFile(seedFile, seed, 0o600))

	settings := map[string]string{
		"wrong password":  "username: worker\npassword: wrong",
		"garbage creds":   "user_credentials: " + garbage,
		"garbage nkey":    "nkeys_seed: " + garbage,
		"unknown nkey":    "nkeys_seed: " + seedFile,
		"garbage CA file": "username: worker\npassword: right\ntls: {ca_file: " + garbage + "}",
	}
	for name, nats := range settings {
		cfg := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yaml")
		require.NoError(t, os.WriteFile(cfg, []byte("nats:\n  servers: ["+url+"]\n"+indent(nats, "  ")+"\n"), 0o600))
		for _, args := range [][]string{{"status", "-c", cfg, "x"}, {"submit", "-c", cfg, "-p", "quick.yml", "-i", "inventory/hosts"}} {
			_, errOut, code := runCLI(t, args...)
			require.Equal(t, 2, code, "%s, %s: %s", name, args[0], errOut)
			require.NotContains(t, errOut, "not a credential", "a file's content is never shown")
		}
	}

	// The right settings connect (a server without JetStream: exit 5 is
	// not a settings error) ...
	cfg := filepath.Join(dir, "right.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("nats:\n  servers: ["+url+"]\n  username: worker\n  password: right\n"), 0o600))
	_, errOut, code := runCLI(t, "status", "-c", cfg, "x")
	require.Equal(t, 5, code, errOut)
	require.Contains(t, errOut, "JetStream is not enabled")
	// ... and a server that is not there is 5 whatever the settings.
	_, errOut, code = runCLI(t, "status", "-c", cfg, "-s", "nats://worker:right@127.0.0.1:1", "x")
	require.Equal(t, 5, code, errOut)
	require.Contains(t, errOut, "127.0.0.1:1")
}
