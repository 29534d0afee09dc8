package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// mqttSub is a live mosquitto_sub on the status topics of group production.
type mqttSub struct {
	cmd *exec.Cmd
	out *syncBuffer
}

func subscribeStatus(t *testing.T, port int, extra ...string) *mqttSub {
	t.Helper()
	args := append([]string{"-V", "mqttv311", "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-q", "1",
		"-t", "ansible/production/tasks/+/status", "-F", "%r %q %t %p"}, extra...)
	s := &mqttSub{cmd: exec.Command("mosquitto_sub", args...), out: &syncBuffer{}}
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	require.NoError(t, s.cmd.Start())
	t.Cleanup(func() { _ = s.cmd.Process.Kill(); _ = s.cmd.Wait() })
	return s
}

// statusLine is one message a subscriber got.
type statusLine struct {
	retained bool
	qos      string
	topic    string
	status   schemas.TaskStatus
}

func (s *mqttSub) lines(t *testing.T) []statusLine {
	t.Helper()
	var out []statusLine
	for _, l := range strings.Split(strings.TrimSpace(s.out.String()), "\n") {
		f := strings.SplitN(l, " ", 4)
		if len(f) < 4 {
			continue
		}
		var st schemas.TaskStatus
		require.NoError(t, json.Unmarshal([]byte(f[3]), &st), l)
		out = append(out, statusLine{retained: f[0] == "1", qos: f[1], topic: f[2], status: st})
	}
	return out
}

// The status of every task reaches MQTT subscribers of nats-server's
// listener: live, in order, and retained for a subscriber that comes later.
func TestMQTTStatusTopics(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{NATSExtra: fmt.Sprintf("mqtt_listener: 127.0.0.1:%d", ns.mqttPort)})
	c := connectClient(t, ns.url)
	live := subscribeStatus(t, ns.mqttPort)
	// The subscriber is there once it got the retained statuses (none) and
	// a probe: wait for the probe task's first status instead of sleeping.
	jsPub(t, ns.url, "ansible.production.tasks", "probe", taskJSON(t, map[string]any{"task_id": "probe",
		"playbook": "quick.yml", "inventory": "inventory/hosts"}))
	c.waitFinal(t, "production", "probe", 30*time.Second)
	checkFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		for _, l := range live.lines(t) {
			if l.topic == "ansible/production/tasks/probe/status" && l.status.State.Final() {
				return nil
			}
		}
		return fmt.Errorf("probe's final status not on MQTT yet")
	})

	// Submitted as MQTT 3.1.1 devices do, at QoS 1 and 2.
	mqttPub(t, ns.mqttPort, "mqttv311", 1, "ansible/production/tasks", taskJSON(t, map[string]any{"task_id": "mq-1",
		"playbook": "steps.yml", "inventory": "inventory/hosts", "extra_vars": map[string]any{"pause": 0.3}}))
	mqttPub(t, ns.mqttPort, "mqttv311", 2, "ansible/production/tasks", taskJSON(t, map[string]any{"task_id": "mq-2",
		"playbook": "quick.yml", "inventory": "inventory/hosts"}))
	mqttPub(t, ns.mqttPort, "mqttv311", 1, "ansible/production/tasks", taskJSON(t, map[string]any{"task_id": "mq-bad",
		"playbook": "quick.yml", "inventory": "inventory/hosts", "forks": 0}))
	for _, id := range []string{"mq-1", "mq-2"} {
		final := c.waitFinal(t, "production", id, 60*time.Second)
		require.Equal(t, schemas.StateSuccess, final.State, final.Err())
	}

	var states []schemas.State
	checkFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		states = states[:0]
		for _, l := range live.lines(t) {
			if l.topic == "ansible/production/tasks/mq-1/status" {
				states = append(states, l.status.State)
			}
		}
		if len(states) == 0 || states[len(states)-1] != schemas.StateSuccess {
			return fmt.Errorf("mq-1 on MQTT: %v", states)
		}
		return nil
	})
	require.Equal(t, schemas.StateQueued, states[0], "first queued: %v", states)
	require.Contains(t, states, schemas.StateRunning)
	for i := 1; i < len(states); i++ {
		require.False(t, states[i-1].Final(), "a status after the final one: %v", states)
	}

	// Later subscribers get the latest status, retained, at QoS 1; the
	// reason of a refused task is there too.
	for id, want := range map[string]schemas.State{"mq-1": schemas.StateSuccess, "mq-2": schemas.StateSuccess, "mq-bad": schemas.StateFailed} {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		out, err := exec.CommandContext(ctx, "mosquitto_sub", "-V", "mqttv311", "-h", "127.0.0.1", "-p", fmt.Sprint(ns.mqttPort),
			"-q", "1", "-C", "1", "-W", "10", "-t", "ansible/production/tasks/"+id+"/status", "-F", "%r %q %t %p").CombinedOutput()
		cancel()
		require.NoError(t, err, string(out))
		f := strings.SplitN(strings.TrimSpace(string(out)), " ", 4)
		require.Len(t, f, 4, string(out))
		require.Equal(t, "1", f[0], "retained: %s", out)
		require.Equal(t, "1", f[1], "QoS 1: %s", out)
		var st schemas.TaskStatus
		require.NoError(t, json.Unmarshal([]byte(f[3]), &st))
		require.Equal(t, want, st.State, string(out))
		if id == "mq-bad" {
			require.Contains(t, st.Err(), "forks must be 1 or more")
		}
	}
}
