package test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// created_at is the time of the first status, whoever wrote it: every
// later status of the task keeps it.
func TestCreatedAtKeepsTheFirstValue(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{})
	c := connectClient(t, ns.url)
	_, errOut, code := runCLI(t, "submit", "-s", ns.url, "--task-id", "created-1", "-p", "quick.yml", "-i", "inventory/hosts", "--wait", "--quiet")
	require.Equal(t, 0, code, errOut)
	st := c.waitFinal(t, "production", "created-1", 30*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := c.js.KeyValue(ctx, jsbridge.StatusBucket)
	require.NoError(t, err)
	history, err := kv.History(ctx, "production.created-1")
	require.NoError(t, err)
	require.Greater(t, len(history), 2, "queued, running and the final status")
	for _, e := range history {
		if e.Operation() != jetstream.KeyValuePut {
			continue
		}
		s, err := schemas.ParseTaskStatus(e.Value())
		require.NoError(t, err)
		require.Equal(t, st.CreatedAt.Time, s.CreatedAt.Time, "revision %d (%s)", e.Revision(), s.State)
	}
}

// The runner's starting status gives the absolute working directory even
// when playbook_directory is relative.
func TestStartingStatusHasAbsoluteCwd(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{PlaybookDir: "testdata/playbooks"})
	c := connectClient(t, ns.url)
	jsPub(t, ns.url, "ansible.production.tasks", "cwd-1",
		taskJSON(t, map[string]any{"task_id": "cwd-1", "playbook": "quick.yml", "inventory": "inventory/hosts"}))
	st := c.waitFinal(t, "production", "cwd-1", 30*time.Second)
	require.Equal(t, schemas.StateSuccess, st.State, st.Err())
	var cwd string
	for _, m := range c.runnerMessages(t, "cwd-1") {
		if m.Status != nil && m.Status.Status == schemas.RunnerStarting {
			cwd = m.Status.Cwd
		}
	}
	require.True(t, filepath.IsAbs(cwd), "cwd %q", cwd)
	want, err := filepath.EvalSymlinks(playbookDir(t))
	require.NoError(t, err)
	require.Equal(t, want, cwd)
}

// A syntax error's message keeps Ansible's indentation, so "^ here" points
// under the offending text.
func TestSyntaxErrorKeepsIndentation(t *testing.T) {
	t.Parallel()
	a := newAttack(t, "")
	bad := "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: x\n      debug: msg=hi\n     bad: [\n"
	require.NoError(t, os.WriteFile(filepath.Join(a.dir, "bad.yml"), []byte(bad), 0o644))
	st := a.run("production", map[string]any{"task_id": "syntax", "playbook": "bad.yml", "inventory": "inventory/hosts"})
	require.Equal(t, schemas.StateFailed, st.State)
	msg := st.Err()
	require.Contains(t, msg, "The offending line appears to be:")
	require.Contains(t, msg, "\n      debug: msg=hi\n                ^ here", "the marker under the offending text:\n%s", msg)
	lines := strings.Split(msg, "\n")
	require.True(t, strings.HasPrefix(lines[0], "ERROR!"), msg)
}
