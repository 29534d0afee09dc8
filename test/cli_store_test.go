package test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// embeddedWorkerConfig writes the configuration of a worker with an
// embedded server on port and its store in store.
func embeddedWorkerConfig(t *testing.T, store string, port int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "embedded.yaml")
	cfg := fmt.Sprintf(`log_level: DEBUG
worker:
  group_name: production
  playbook_directory: %s
  data_dir: %s
nats:
  embedded:
    enabled: true
    listen: 127.0.0.1:%d
    store_dir: %s
`, playbookDir(t), filepath.Join(t.TempDir(), "data"), port, store)
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	return path
}

// A second worker on the store_dir of a running one is refused at once,
// naming the first worker's pid, and leaves the live store alone.
func TestCLIEmbeddedStoreLocked(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	port := freePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)

	first := exec.Command(binary, "run", "-c", embeddedWorkerConfig(t, store, port))
	ready := newNotifySocket(t)
	first.Env = append(os.Environ(), ready.env())
	var logs syncBuffer
	first.Stdout, first.Stderr = &logs, &logs
	require.NoError(t, first.Start())
	t.Cleanup(func() {
		_ = first.Process.Signal(os.Interrupt)
		_ = first.Wait()
	})
	ready.wait(t, 20*time.Second, nil, logs.String)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	second := exec.CommandContext(ctx, binary, "run", "-c", embeddedWorkerConfig(t, store, freePort(t)))
	out, err := second.CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "the second worker must exit at once:\n%s", out)
	require.Equal(t, 1, ee.ExitCode(), string(out))
	require.Contains(t, string(out), "in use by another worker (pid "+strconv.Itoa(first.Process.Pid)+")")

	// The first worker's streams are untouched: it still runs a task.
	_, errOut, code := runCLI(t, "submit", "-s", url, "--wait", "-p", "quick.yml", "-i", "inventory/hosts")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, errOut, "success")
	require.NotContains(t, logs.String(), "will rebuild")
	require.NotContains(t, string(out), "will rebuild")
}
