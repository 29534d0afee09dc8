package test

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// The same task_id submitted again, through JetStream with Nats-Msg-Id, a
// plain nats pub, or MQTT (which carries no message id), runs once. The
// second submission is logged and leaves the first one's status alone.
func TestDuplicateSubmissionsRunOnce(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	w := startWorker(t, ns.url, workerOpts{})
	c := connectClient(t, ns.url)

	mqtt := func(task string) {
		out, err := exec.Command("mosquitto_pub", "-V", "mqttv311", "-h", "127.0.0.1", "-p", fmt.Sprint(ns.mqttPort),
			"-q", "1", "-t", "ansible/production/tasks", "-m", task).CombinedOutput()
		require.NoError(t, err, string(out))
	}
	for _, path := range []string{"jetstream", "core", "mqtt"} {
		id := "dup-" + path
		task := taskJSON(t, map[string]any{"task_id": id, "playbook": "steps.yml", "inventory": "inventory/hosts",
			"extra_vars": map[string]any{"pause": 1}})
		var first *schemas.TaskStatus
		for i := range 2 {
			switch path {
			case "jetstream":
				out := jsPub(t, ns.url, "ansible.production.tasks", id, task)
				if i == 1 {
					require.Contains(t, out, "Duplicate")
				}
			case "core":
				out, err := natsCLI(t, ns.url, "pub", "ansible.production.tasks", task)
				require.NoError(t, err, out)
			case "mqtt":
				mqtt(task)
			}
			if i == 0 {
				first = c.waitRunning(t, "production", id)
			}
		}
		st := c.waitFinal(t, "production", id, 60*time.Second)
		require.Equal(t, schemas.StateSuccess, st.State, st.Err())
		require.Equal(t, 1, st.Attempt)
		require.Equal(t, first.StartedAt, st.StartedAt, "the duplicate left the first run's status alone")
		starts := 0
		for _, ev := range events(c.runnerMessages(t, id)) {
			if ev.Event == "playbook_on_start" {
				starts++
			}
		}
		require.Equal(t, 1, starts, "%s: ran once", path)
	}
	checkFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		if n := strings.Count(w.logs.String(), "ignoring duplicate submission"); n != 2 {
			return fmt.Errorf("%d duplicates logged, want 2 (core and mqtt)", n)
		}
		return nil
	})
	waitQueueEmpty(t, ns.url)
}

// worker.max_queue_size: a submission that finds that many tasks of the group
// waiting gets a failed status saying the queue is full, and never runs.
func TestQueueLimit(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{Extra: "max_queue_size: 2\nkill_grace: 2"})
	c := connectClient(t, ns.url)

	submit := func(id, playbook string, extra ...string) {
		args := append([]string{"submit", "-s", ns.url, "--task-id", id, "-p", playbook, "-i", "inventory/hosts"}, extra...)
		_, errOut, code := runCLI(t, args...)
		require.Equal(t, 0, code, errOut)
	}
	submit("running", "slow.yml", "-e", "seconds=65.3")
	c.waitRunning(t, "production", "running")
	submit("wait-1", "quick.yml")
	submit("wait-2", "quick.yml")
	// Submitted over MQTT, where the publisher's PUBACK says nothing about
	// the queue: the refusal shows in the status.
	task := taskJSON(t, map[string]any{"task_id": "too-many", "playbook": "quick.yml", "inventory": "inventory/hosts"})
	out, err := exec.Command("mosquitto_pub", "-V", "mqttv311", "-h", "127.0.0.1", "-p", fmt.Sprint(ns.mqttPort),
		"-q", "1", "-t", "ansible/production/tasks", "-m", task).CombinedOutput()
	require.NoError(t, err, string(out))

	st := c.waitFinal(t, "production", "too-many", 20*time.Second)
	require.Equal(t, schemas.StateFailed, st.State)
	require.Contains(t, st.Err(), "queue full")
	require.Contains(t, st.Err(), "2 tasks")

	_, errOut, code := runCLI(t, "cancel", "-s", ns.url, "running")
	require.Equal(t, 0, code, errOut)
	for _, id := range []string{"wait-1", "wait-2"} {
		st := c.waitFinal(t, "production", id, 60*time.Second)
		require.Equal(t, schemas.StateSuccess, st.State, st.Err())
	}
	waitQueueEmpty(t, ns.url)
	st, err = c.status("production", "too-many")
	require.NoError(t, err)
	require.Equal(t, schemas.StateFailed, st.State)
	require.Empty(t, events(c.runnerMessages(t, "too-many")), "the refused task never ran")
}
