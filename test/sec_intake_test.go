package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// quickTask is a valid request for quick.yml.
func quickTask(t *testing.T, id string) string {
	t.Helper()
	return taskJSON(t, map[string]any{"task_id": id, "playbook": "quick.yml", "inventory": "inventory/hosts"})
}

// storedOn returns how many messages of ANSIBLE_TASKS are on subject.
func (c *client) storedOn(subject string) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := c.js.Stream(ctx, jsbridge.TasksStream)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return 0, err
	}
	return info.State.Subjects[subject], nil
}

// Messages published straight on the intake subject, with made-up
// Nats-Sequence headers, have no effect on any task: neither for a
// sequence that exists (another group's task), nor for the one the real
// task gets next, nor for one far ahead.
func TestSecIntakeForgedMessages(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	wp := startWorker(t, ns.url, workerOpts{})
	c := connectClient(t, ns.url)

	// Sequence 1: a task of a group nobody serves, which stays stored.
	jsPub(t, ns.url, "ansible.staging.tasks", "parked", quickTask(t, "parked"))
	intake := jsbridge.IntakePrefix + ".ansible.production.tasks"
	forge := func(seq int, id string) {
		out, err := natsCLI(t, ns.url, "pub", "-H", fmt.Sprintf("Nats-Sequence:%d", seq), intake, quickTask(t, id))
		require.NoError(t, err, out)
	}
	forge(1, "victim")    // an existing sequence: would claim "victim" for it
	forge(2, "squatter")  // the sequence the real "victim" gets next
	forge(1000, "future") // a sequence far ahead

	jsPub(t, ns.url, "ansible.production.tasks", "victim", quickTask(t, "victim"))
	jsPub(t, ns.url, "ansible.production.tasks", "squatter", quickTask(t, "squatter"))
	for _, id := range []string{"victim", "squatter"} {
		st := c.waitFinal(t, "production", id, 60*time.Second)
		require.Equal(t, schemas.StateSuccess, st.State, "%s: %s", id, st.Err())
		require.Equal(t, 1, st.Attempt)
	}
	_, err := c.status("production", "future")
	require.True(t, errors.Is(err, jetstream.ErrKeyNotFound), "a forged message recorded task future: %v", err)
	require.Equal(t, 3, strings.Count(wp.logs.String(), "intake message ignored"), "each forged message is logged")
	require.NotContains(t, wp.logs.String(), "duplicate submission")
}

// Submissions whose task id cannot be read are removed from the stream as
// soon as intake sees them, so 150 of them, waiting behind a busy worker, do
// not make a real task fail "queue full" with max_queue_size 100.
func TestSecIntakeJunkDoesNotFillQueue(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	wp := startWorker(t, ns.url, workerOpts{Extra: "max_queue_size: 100\nkill_grace: 2"})
	c := connectClient(t, ns.url)
	const subject = "ansible.production.tasks"

	jsPub(t, ns.url, subject, "busy", taskJSON(t, map[string]any{"task_id": "busy", "playbook": "slow.yml",
		"inventory": "inventory/hosts", "extra_vars": map[string]any{"seconds": 600}}))
	c.waitRunning(t, "production", "busy")
	for _, body := range []string{"not JSON at all", `{"playbook":"quick.yml","inventory":"inventory/hosts"}`} {
		out, err := natsCLI(t, ns.url, "pub", "--jetstream", "--count", "75", subject, body)
		require.NoError(t, err, out)
	}
	jsPub(t, ns.url, subject, "after-junk", quickTask(t, "after-junk"))

	checkFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		st, err := c.status("production", "after-junk")
		if err == nil && st.State != schemas.StateQueued {
			t.Fatalf("after-junk is %s: %s", st.State, st.Err())
		}
		return err
	})
	// Left in the stream: the running task and the real one.
	checkFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		n, err := c.storedOn(subject)
		if err == nil && n != 2 {
			err = fmt.Errorf("%d messages stored", n)
		}
		return err
	})
	logs := wp.logs.String()
	require.Equal(t, 150, strings.Count(logs, "no task id can be read"), "each junk message is logged")
	require.NotContains(t, logs, "not JSON at all", "the payload is not logged")

	_, errOut, code := runCLI(t, "cancel", "-s", ns.url, "busy")
	require.Equal(t, 0, code, errOut)
	st := c.waitFinal(t, "production", "after-junk", 60*time.Second)
	require.Equal(t, schemas.StateSuccess, st.State, st.Err())
	waitQueueEmpty(t, ns.url)
}

// The tasks stream has the configured limits: the nats CLI gets an error for
// a message over nats.tasks_max_msg_size and for one beyond
// nats.tasks_max_bytes, and nothing stored is dropped for it.
func TestSecStreamLimits(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{NATSExtra: "tasks_max_msg_size: 4096\ntasks_max_bytes: 16384\ntasks_max_age: 3600"})

	out, err := natsCLI(t, ns.url, "stream", "info", jsbridge.TasksStream, "--json")
	require.NoError(t, err, out)
	var info struct {
		Config struct {
			MaxMsgSize int64  `json:"max_msg_size"`
			MaxBytes   int64  `json:"max_bytes"`
			MaxAge     int64  `json:"max_age"`
			Discard    string `json:"discard"`
			Duplicates int64  `json:"duplicate_window"`
		} `json:"config"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &info), out)
	require.Equal(t, int64(4096), info.Config.MaxMsgSize)
	require.Equal(t, int64(16384), info.Config.MaxBytes)
	require.Equal(t, int64(time.Hour), info.Config.MaxAge)
	require.Equal(t, "new", info.Config.Discard)
	require.Equal(t, int64(10*time.Minute), info.Config.Duplicates)

	// To a group nobody serves: nothing takes the messages away.
	const subject = "ansible.nobody.tasks"
	out, err = natsCLI(t, ns.url, "pub", "--jetstream", subject, strings.Repeat("x", 5000))
	require.Error(t, err, "an oversized message is refused: %s", out)
	require.Contains(t, out, "message size exceeds maximum allowed")

	body := strings.Repeat("y", 3000)
	stored := 0
	for ; stored < 10; stored++ {
		out, err = natsCLI(t, ns.url, "pub", "--jetstream", subject, body)
		if err != nil {
			break
		}
	}
	require.Error(t, err, "16384 bytes hold no 10 messages of 3000 bytes")
	require.Contains(t, out, "maximum bytes exceeded")
	require.GreaterOrEqual(t, stored, 4)
	c := connectClient(t, ns.url)
	n, err := c.storedOn(subject)
	require.NoError(t, err)
	require.Equal(t, uint64(stored), n, "the refused publish dropped nothing stored")
}
