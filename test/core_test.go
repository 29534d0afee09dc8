package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// A task submitted with the real nats CLI runs to success; the KV status
// carries Ansible's PLAY RECAP counts and the merged set_stats output, and
// events and runner statuses are on pub.ansible.runner.> with the configured
// headers and a Nats-Msg-Id.
func TestNatsPubTaskSucceeds(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{})
	c := connectClient(t, ns.url)

	task := taskJSON(t, map[string]any{"task_id": "pub-1", "playbook": "full.yml", "inventory": "inventory/hosts",
		"extra_vars": map[string]any{"who": "nats"}})
	out := jsPub(t, ns.url, "ansible.production.tasks", "pub-1", task)
	require.Contains(t, out, "Stored in Stream: ANSIBLE_TASKS")

	want := playRecap(t, "full.yml")
	st := c.waitFinal(t, "production", "pub-1", 60*time.Second)
	require.Equal(t, schemas.StateSuccess, st.State, st.Err())
	require.Equal(t, want.OK, st.TasksOK, "ok")
	require.Equal(t, want.Changed, st.TasksChanged, "changed")
	require.Equal(t, want.Failed, st.TasksFailed, "failed")
	require.Equal(t, want.Skipped, st.TasksSkipped, "skipped")
	require.Equal(t, want.Unreachable, st.TasksUnreachable, "unreachable")
	require.Equal(t, 8, st.TasksTotal, "task starts incl. the handler")
	// Later set_stats calls win; Ansible's own aggregation would make a=3.
	require.Equal(t, map[string]any{"a": float64(2), "b": "x", "c": []any{float64(1), float64(2)}}, st.Output)
	require.NotNil(t, st.ReturnCode)
	require.Equal(t, 0, *st.ReturnCode)
	require.Nil(t, st.ErrorMessage)
	require.Equal(t, "production", st.Group)
	require.Equal(t, 1, st.Attempt)
	require.NotEmpty(t, st.Worker)
	require.NotNil(t, st.CreatedAt)
	require.NotNil(t, st.StartedAt)
	require.NotNil(t, st.CompletedAt)
	require.Greater(t, st.DurationSeconds, 0.0)

	msgs := c.runnerMessages(t, "pub-1")
	ids := map[string]bool{}
	var statuses []string
	for i, m := range msgs {
		require.Equal(t, "ansible-worker-test", m.Header.Get("producer"), "configured header on %s", m.Subject)
		id := m.Header.Get("Nats-Msg-Id")
		require.NotEmpty(t, id, "Nats-Msg-Id on message %d", i)
		require.False(t, ids[id], "message id %s repeated", id)
		ids[id] = true
		if m.Status != nil {
			require.Equal(t, "pub.ansible.runner.production.pub-1.status", m.Subject)
			require.Equal(t, "pub-1", m.Status.RunnerIdent)
			statuses = append(statuses, m.Status.Status)
		} else {
			require.Equal(t, "pub.ansible.runner.production.pub-1.event", m.Subject)
		}
	}
	require.Equal(t, []string{"starting", "running", "successful"}, statuses)
	require.Equal(t, "successful", msgs[len(msgs)-1].Status.Status, "final status after every event")
	evs := events(msgs)
	for i, ev := range evs {
		require.Equal(t, i+1, ev.Counter, "counters 1..N without gaps")
		require.Equal(t, "pub-1", ev.RunnerIdent)
		require.NotEmpty(t, ev.UUID)
	}
	require.Equal(t, "playbook_on_start", evs[0].Event)
	require.Equal(t, "playbook_on_stats", evs[len(evs)-1].Event)
	require.Contains(t, evs[len(evs)-1].Stdout, "PLAY RECAP")
}

// The events published for a playbook match, name for name and in order,
// what the real ansible-runner records in job_events for the same playbook.
func TestEventsMatchAnsibleRunner(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{})
	c := connectClient(t, ns.url)

	for _, pb := range []string{"full.yml", "fail.yml"} {
		id := strings.TrimSuffix(pb, ".yml") + "-events"
		_, errOut, code := runCLI(t, "submit", "-s", ns.url, "--task-id", id, "-p", pb, "-i", "inventory/hosts")
		require.Equal(t, 0, code, errOut)
		c.waitFinal(t, "production", id, 60*time.Second)
		ours := eventNames(events(c.runnerMessages(t, id)))
		theirs := ansibleRunnerEvents(t, pb)
		require.Equal(t, theirs, ours, "events of %s", pb)
	}
}

func eventNames(evs []*schemas.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Event)
	}
	return out
}

// ansibleRunnerEvents runs the real ansible-runner on a copy of the playbook
// and returns the event names of its job_events, in counter order.
func ansibleRunnerEvents(t testing.TB, playbook string) []string {
	t.Helper()
	pdd := t.TempDir()
	src := playbookDir(t)
	require.NoError(t, os.MkdirAll(filepath.Join(pdd, "project"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(pdd, "inventory"), 0o755))
	b, err := os.ReadFile(filepath.Join(src, playbook))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(pdd, "project", playbook), b, 0o644))
	b, err = os.ReadFile(filepath.Join(src, "inventory", "hosts"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(pdd, "inventory", "hosts"), b, 0o644))
	cmd := exec.Command("/usr/bin/ansible-runner", "run", pdd, "-p", playbook, "--ident", "cmp")
	out, _ := cmd.CombinedOutput()
	dir := filepath.Join(pdd, "artifacts", "cmp", "job_events")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err, "ansible-runner output:\n%s", out)
	type ev struct {
		Counter int    `json:"counter"`
		Event   string `json:"event"`
	}
	var evs []ev
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") || strings.Contains(e.Name(), "partial") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		var x ev
		require.NoError(t, json.Unmarshal(b, &x))
		evs = append(evs, x)
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].Counter < evs[j].Counter })
	var names []string
	for _, e := range evs {
		names = append(names, e.Event)
	}
	require.NotEmpty(t, names)
	return names
}

// A failing playbook ends failed with its return code and the failing task
// and message; a missing playbook ends failed without running Ansible.
func TestFailures(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{})
	c := connectClient(t, ns.url)

	_, errOut, code := runCLI(t, "submit", "-s", ns.url, "--task-id", "bad-1", "-p", "fail.yml", "-i", "inventory/hosts")
	require.Equal(t, 0, code, errOut)
	st := c.waitFinal(t, "production", "bad-1", 60*time.Second)
	require.Equal(t, schemas.StateFailed, st.State)
	require.NotNil(t, st.ReturnCode)
	require.Equal(t, 2, *st.ReturnCode)
	require.Contains(t, st.Err(), `"Check the disk"`)
	require.Contains(t, st.Err(), "disk is full")
	require.Contains(t, st.Err(), "localhost")
	require.Equal(t, 1, st.TasksFailed)
	require.Equal(t, 1, st.TasksOK)

	_, errOut, code = runCLI(t, "submit", "-s", ns.url, "--task-id", "missing-1", "-p", "nope.yml", "-i", "inventory/hosts")
	require.Equal(t, 0, code, errOut)
	st = c.waitFinal(t, "production", "missing-1", 30*time.Second)
	require.Equal(t, schemas.StateFailed, st.State)
	require.Contains(t, st.Err(), "nope.yml")
	require.Contains(t, st.Err(), "not found")
	require.Nil(t, st.ReturnCode, "Ansible never ran")
	msgs := c.runnerMessages(t, "missing-1")
	require.Empty(t, events(msgs), "no Ansible events")
	require.Len(t, msgs, 1)
	require.Equal(t, "failed", msgs[0].Status.Status)
}

// Two workers of one group and 10 tasks: every task runs exactly once and
// both workers take some.
func TestTwoWorkersShareTheQueue(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	w1 := startWorker(t, ns.url, workerOpts{})
	w2 := startWorker(t, ns.url, workerOpts{})
	c := connectClient(t, ns.url)

	for i := range 10 {
		id := fmt.Sprintf("share-%d", i)
		task := taskJSON(t, map[string]any{"task_id": id, "playbook": "steps.yml", "inventory": "inventory/hosts",
			"extra_vars": map[string]any{"pause": 0.3}})
		jsPub(t, ns.url, "ansible.production.tasks", id, task)
	}
	byWorker := map[string]int{}
	for i := range 10 {
		id := fmt.Sprintf("share-%d", i)
		st := c.waitFinal(t, "production", id, 90*time.Second)
		require.Equal(t, schemas.StateSuccess, st.State, st.Err())
		require.Equal(t, 1, st.Attempt)
		byWorker[st.Worker]++
		starts := 0
		for _, ev := range events(c.runnerMessages(t, id)) {
			if ev.Event == "playbook_on_start" {
				starts++
			}
		}
		require.Equal(t, 1, starts, "task %s ran exactly once", id)
	}
	require.Len(t, byWorker, 2, "both workers took tasks: %v", byWorker)
	require.Contains(t, byWorker, w1.id)
	require.Contains(t, byWorker, w2.id)
}

// submit --wait shows the playbook's output while it runs, then exits 0 or 1
// by the result.
func TestSubmitWaitStreamsOutput(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{})

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "submit", "-s", ns.url, "--wait", "-p", "steps.yml", "-i", "inventory/hosts",
		"-e", "pause=3")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var errOut syncBuffer
	cmd.Stderr = &errOut
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	var lines []string
	var mu sync.Mutex
	sawStepOneWhileRunning := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		reported := false
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
			if !reported && strings.Contains(sc.Text(), "step one") {
				reported = true
				select {
				case <-exited:
					sawStepOneWhileRunning <- false
				default:
					sawStepOneWhileRunning <- true
				}
			}
		}
		exited <- cmd.Wait()
	}()
	select {
	case running := <-sawStepOneWhileRunning:
		require.True(t, running, "output arrived only after the end")
	case <-ctx.Done():
		t.Fatalf("no output; stderr:\n%s", errOut.String())
	}
	require.NoError(t, <-exited, errOut.String())
	mu.Lock()
	all := strings.Join(lines, "\n")
	mu.Unlock()
	require.Contains(t, all, "TASK [Step three]")
	require.Contains(t, all, "PLAY RECAP")
	require.Contains(t, errOut.String(), "success")

	_, errText, code := runCLI(t, "submit", "-s", ns.url, "--wait", "-p", "fail.yml", "-i", "inventory/hosts")
	require.Equal(t, 1, code, errText)
	require.Contains(t, errText, "disk is full")
}

// A restart of the embedded server on the same store_dir keeps every queued
// task; a worker then runs them.
func TestEmbeddedRestartKeepsQueuedTasks(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	port := freePort(t)
	cfgPath := embeddedWorkerConfig(t, store, port)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)

	start := func() *exec.Cmd {
		cmd := exec.Command(binary, "run", "-c", cfgPath)
		ready := newNotifySocket(t)
		cmd.Env = append(os.Environ(), ready.env())
		var logs syncBuffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		require.NoError(t, cmd.Start())
		ready.wait(t, 20*time.Second, nil, logs.String)
		return cmd
	}
	stop := func(cmd *exec.Cmd) {
		require.NoError(t, cmd.Process.Signal(os.Interrupt))
		require.NoError(t, cmd.Wait())
	}

	srv := start()
	// Group "later" has no worker yet: its tasks wait in the stream.
	for i := range 3 {
		id := fmt.Sprintf("kept-%d", i)
		task := taskJSON(t, map[string]any{"task_id": id, "playbook": "quick.yml", "inventory": "inventory/hosts"})
		jsPub(t, url, "ansible.later.tasks", id, task)
	}
	stop(srv)
	srv = start()
	defer stop(srv)
	out, err := natsCLI(t, url, "stream", "info", "ANSIBLE_TASKS", "--json")
	require.NoError(t, err, out)
	var info struct {
		State struct {
			Msgs int `json:"messages"`
		} `json:"state"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &info))
	require.Equal(t, 3, info.State.Msgs, "queued tasks survived the restart")

	startWorker(t, url, workerOpts{Group: "later"})
	c := connectClient(t, url)
	for i := range 3 {
		st := c.waitFinal(t, "later", fmt.Sprintf("kept-%d", i), 60*time.Second)
		require.Equal(t, schemas.StateSuccess, st.State, st.Err())
	}

	// Commands other than run reach the embedded server through the same
	// configuration file, without nats.servers.
	_, errOut, code := runCLI(t, "submit", "-c", cfgPath, "--wait", "-p", "quick.yml", "-i", "inventory/hosts")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, errOut, "success")
}

// freePort returns a loopback port nothing listens on.
func freePort(t testing.TB) int {
	t.Helper()
	return freePorts(t, 1)[0]
}

// freePorts returns n distinct loopback ports nothing listens on: all are
// held at once, as the kernel may hand a port just released to the next
// listener (a node's monitor and route port were once the same).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// A task published over MQTT 3.1.1 (mosquitto_pub) lands in the same queue
// and runs.
func TestMQTTSubmission(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{})
	c := connectClient(t, ns.url)

	task := taskJSON(t, map[string]any{"task_id": "mqtt-1", "playbook": "quick.yml", "inventory": "inventory/hosts"})
	out, err := exec.Command("mosquitto_pub", "-V", "mqttv311", "-h", "127.0.0.1", "-p", fmt.Sprint(ns.mqttPort),
		"-q", "1", "-t", "ansible/production/tasks", "-m", task).CombinedOutput()
	require.NoError(t, err, string(out))
	st := c.waitFinal(t, "production", "mqtt-1", 60*time.Second)
	require.Equal(t, schemas.StateSuccess, st.State, st.Err())
}

// Tasks submitted while no worker of their group runs are recorded as
// queued as soon as one starts, then run in order.
func TestTasksQueuedBeforeAnyWorker(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{}) // provisions the streams; serves another group
	c := connectClient(t, ns.url)
	for _, tc := range []struct{ id, body string }{
		{"early-1", taskJSON(t, map[string]any{"task_id": "early-1", "playbook": "slow.yml", "inventory": "inventory/hosts",
			"extra_vars": map[string]any{"seconds": 3}})},
		{"early-2", taskJSON(t, map[string]any{"task_id": "early-2", "playbook": "quick.yml", "inventory": "inventory/hosts"})},
	} {
		out, err := natsCLI(t, ns.url, "pub", "ansible.late.tasks", tc.body)
		require.NoError(t, err, out)
	}
	_, err := c.status("late", "early-2")
	require.Error(t, err, "nobody has seen it yet")

	startWorker(t, ns.url, workerOpts{Group: "late"})
	c.waitRunning(t, "late", "early-1")
	// Recorded while it waits behind early-1 (3 s).
	st := c.waitStatus(t, "late", "early-2", 3*time.Second, func(s *schemas.TaskStatus) error {
		if s.State != schemas.StateQueued {
			return fmt.Errorf("state %s", s.State)
		}
		return nil
	})
	require.NotNil(t, st.CreatedAt)
	for _, id := range []string{"early-1", "early-2"} {
		st = c.waitFinal(t, "late", id, 60*time.Second)
		require.Equal(t, schemas.StateSuccess, st.State, st.Err())
	}
}
