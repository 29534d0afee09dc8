package test

import (
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// A running task is stopped by `ansible-worker cancel`, by an empty NATS
// message on its cancel subject, and by an MQTT publish on its cancel topic;
// it ends cancelled and no process of its playbook is left.
func TestCancelRunningTask(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{Concurrency: 3, Extra: "kill_grace: 2"})
	c := connectClient(t, ns.url)

	ways := map[string]func(id string){
		"cli": func(id string) {
			_, errOut, code := runCLI(t, "cancel", "-s", ns.url, id)
			require.Equal(t, 0, code, errOut)
			require.Contains(t, errOut, "is being stopped")
			require.Contains(t, errOut, "ended cancelled")
		},
		"nats": func(id string) {
			out, err := natsCLI(t, ns.url, "pub", "ansible.production.tasks."+id+".cancel", "")
			require.NoError(t, err, out)
		},
		"mqtt": func(id string) {
			out, err := exec.Command("mosquitto_pub", "-V", "mqttv311", "-h", "127.0.0.1", "-p", fmt.Sprint(ns.mqttPort),
				"-q", "1", "-t", "ansible/production/tasks/"+id+"/cancel", "-n").CombinedOutput()
			require.NoError(t, err, string(out))
		},
	}
	i := 0
	for way, cancel := range ways {
		i++
		id := "cancel-" + way
		hang := fmt.Sprintf("63.%d", i)
		_, errOut, code := runCLI(t, "submit", "-s", ns.url, "--task-id", id, "-p", "slow.yml", "-i", "inventory/hosts",
			"-e", "seconds="+hang)
		require.Equal(t, 0, code, errOut)
		c.waitRunning(t, "production", id)
		checkFor(t, 20*time.Second, 50*time.Millisecond, func() error {
			if len(processesWith("sleep", hang)) == 0 {
				return fmt.Errorf("not sleeping yet")
			}
			return nil
		})
		start := time.Now()
		cancel(id)
		st := c.waitFinal(t, "production", id, 20*time.Second)
		require.Equal(t, schemas.StateCancelled, st.State, way)
		require.Less(t, time.Since(start), 10*time.Second, way)
		require.Equal(t, "cancelled on request", st.Err())
		msgs := c.runnerMessages(t, id)
		require.Equal(t, "canceled", msgs[len(msgs)-1].Status.Status, way)
		checkFor(t, 10*time.Second, 50*time.Millisecond, func() error {
			if left := processesWith("sleep", hang); len(left) > 0 {
				return fmt.Errorf("playbook processes left: %v", left)
			}
			return nil
		})
	}
}

// A task still waiting in the queue ends cancelled and never runs; cancelling
// a finished or unknown task changes nothing and says so.
func TestCancelQueuedFinishedUnknown(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{Extra: "kill_grace: 2"})
	c := connectClient(t, ns.url)

	_, errOut, code := runCLI(t, "submit", "-s", ns.url, "--task-id", "busy", "-p", "slow.yml", "-i", "inventory/hosts", "-e", "seconds=64.1")
	require.Equal(t, 0, code, errOut)
	c.waitRunning(t, "production", "busy")
	_, errOut, code = runCLI(t, "submit", "-s", ns.url, "--task-id", "waiting", "-p", "quick.yml", "-i", "inventory/hosts")
	require.Equal(t, 0, code, errOut)
	c.waitStatus(t, "production", "waiting", 10*time.Second, func(s *schemas.TaskStatus) error {
		if s.State != schemas.StateQueued {
			return fmt.Errorf("state %s", s.State)
		}
		return nil
	})

	_, errOut, code = runCLI(t, "cancel", "-s", ns.url, "waiting")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, errOut, "will not run")
	_, errOut, code = runCLI(t, "cancel", "-s", ns.url, "busy")
	require.Equal(t, 0, code, errOut)

	// The worker is free again: it takes "waiting" from the queue and drops it.
	waitQueueEmpty(t, ns.url)
	st, err := c.status("production", "waiting")
	require.NoError(t, err)
	require.Equal(t, schemas.StateCancelled, st.State)
	require.Equal(t, "cancelled before it started", st.Err())
	require.Empty(t, events(c.runnerMessages(t, "waiting")), "it never ran")

	before, err := c.status("production", "busy")
	require.NoError(t, err)
	_, errOut, code = runCLI(t, "cancel", "-s", ns.url, "busy")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "already finished")
	after, err := c.status("production", "busy")
	require.NoError(t, err)
	require.Equal(t, before, after, "a finished task is left alone")

	_, errOut, code = runCLI(t, "cancel", "-s", ns.url, "never-submitted")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "nothing to cancel")
	_, err = c.status("production", "never-submitted")
	require.Error(t, err)
}
