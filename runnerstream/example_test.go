package runnerstream_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ansible-worker/ansible-worker/runnerstream"
)

// The three stages in one process: Transmit a private data directory, Work
// on the stream (here with a RunFunc that stands in for ansible-playbook;
// `ansible-worker worker` passes worker.JobRunner's), and Process the result
// into the artifacts. Each stage takes an io.Reader and an io.Writer, so
// the streams can cross pipes, sockets or files between hosts.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "demo-")
	defer os.RemoveAll(dir)
	_ = os.MkdirAll(filepath.Join(dir, "project"), 0o755)
	_ = os.WriteFile(filepath.Join(dir, "project", "test.yml"), []byte("- hosts: localhost\n  tasks: []\n"), 0o644)

	var transmitted, results bytes.Buffer
	kw := runnerstream.Kwargs{Ident: "demo-1", Playbook: "test.yml"}
	if err := runnerstream.Transmit(ctx, &transmitted, dir, kw); err != nil {
		fmt.Println(err)
		return
	}

	run := func(ctx context.Context, job *runnerstream.Job, onEvent func([]byte)) (int, string, error) {
		fmt.Println("running", job.Args[len(job.Args)-1], "as", job.Ident)
		onEvent([]byte(`{"uuid": "0b5c", "counter": 1, "stdout": "PLAY [localhost] ***", "event": "playbook_on_play_start"}`))
		return 0, "successful", nil
	}
	status, rc, err := runnerstream.Work(ctx, &transmitted, &results, runnerstream.WorkOptions{Run: run})
	fmt.Println("worker:", status, rc, err)

	res, err := runnerstream.Process(ctx, &results, dir, runnerstream.ProcessOptions{Ident: "demo-1", Stdout: os.Stdout})
	fmt.Println("process:", res.Status, res.RC, err)
	events, _ := os.ReadDir(filepath.Join(res.ArtifactDir, "job_events"))
	fmt.Println("events:", len(events))
	// Output:
	// running test.yml as demo-1
	// worker: successful 0 <nil>
	// PLAY [localhost] ***
	// process: successful 0 <nil>
	// events: 1
}
