//go:build unix

package runnerstream_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/runnerstream"
)

// Process reads ansible-runner's own worker stream into the artifacts, and
// a stream that breaks ends with the error status, not a success.
func TestProcessRunnerStream(t *testing.T) {
	stream, err := os.ReadFile("testdata/worker.bin")
	require.NoError(t, err)
	ctx := context.Background()

	dir := t.TempDir()
	var out bytes.Buffer
	res, err := runnerstream.Process(ctx, bytes.NewReader(stream), dir, runnerstream.ProcessOptions{Ident: "x", Stdout: &out})
	require.NoError(t, err)
	require.True(t, res.OK(), "%+v", res)
	require.Equal(t, 0, res.RC)
	events, err := os.ReadDir(filepath.Join(dir, "artifacts", "x", "job_events"))
	require.NoError(t, err)
	require.Len(t, events, 6)
	status, err := os.ReadFile(filepath.Join(dir, "artifacts", "x", "status"))
	require.NoError(t, err)
	require.Equal(t, "successful", string(status))
	require.Contains(t, out.String(), "PLAY RECAP")

	for name, broken := range map[string][]byte{
		"truncated": stream[:len(stream)/2],
		"no eof":    stream[:bytes.LastIndex(stream, []byte(`{"eof"`))],
		"garbage":   []byte("not a stream\n"),
		"empty":     nil,
	} {
		res, err := runnerstream.Process(ctx, bytes.NewReader(broken), t.TempDir(), runnerstream.ProcessOptions{})
		require.NoError(t, err, name)
		require.Equal(t, "error", res.Status, name)
		require.Contains(t, res.Explanation, "worker stream", name)
		require.False(t, res.OK(), name)
	}
}

// Work refuses a job it may not run with an error status line and the end
// of the stream, and never calls the runner for it.
func TestWorkRefusesBadJobs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "project"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "project", "test.yml"), []byte("- hosts: all\n  tasks: []\n"), 0o644))
	ran := false
	run := func(context.Context, *runnerstream.Job, func([]byte)) (int, string, error) {
		ran = true
		return 0, "successful", nil
	}
	for name, kw := range map[string]runnerstream.Kwargs{
		"outside": {Ident: "a", Playbook: "../../etc/passwd"},
		"binary":  {Ident: "b", Playbook: "test.yml", Binary: "/bin/sh"},
		"module":  {Ident: "c", Module: "shell", ModuleArgs: "id"},
	} {
		var stream, results bytes.Buffer
		require.NoError(t, runnerstream.Transmit(ctx, &stream, dir, kw))
		status, rc, err := runnerstream.Work(ctx, &stream, &results, runnerstream.WorkOptions{Run: run})
		require.NoError(t, err, name)
		require.Equal(t, "error", status, name)
		require.Equal(t, -1, rc, name)
		res, err := runnerstream.Process(ctx, &results, t.TempDir(), runnerstream.ProcessOptions{})
		require.NoError(t, err)
		require.Equal(t, "error", res.Status, name)
		require.Contains(t, res.Explanation, "The job was refused", name)
	}
	require.False(t, ran, "a refused job never runs")
}
