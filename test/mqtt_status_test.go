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

// waitSubscribed returns once the subscriber has its subscription: a
// mosquitto_sub says nothing when it has subscribed, so a probe task runs
// and its final status has to reach the subscriber, instead of a sleep.
func (s *mqttSub) waitSubscribed(t *testing.T, c *client, url string) {
	t.Helper()
	jsPub(t, url, "ansible.production.tasks", "probe", taskJSON(t, map[string]any{"task_id": "probe",
		"playbook": "quick.yml", "inventory": "inventory/hosts"}))
	c.waitFinal(t, "production", "probe", 30*time.Second)
	checkFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		for _, l := range s.lines(t) {
			if l.topic == "ansible/production/tasks/probe/status" && l.status.State.Final() {
				return nil
			}
		}
		return fmt.Errorf("probe's final status not on MQTT yet")
	})
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
	live.waitSubscribed(t, c, ns.url)

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

// states returns, in order, the states a live subscriber saw for task id.
func (s *mqttSub) states(t *testing.T, id string) []schemas.State {
	var out []schemas.State
	for _, l := range s.lines(t) {
		if l.topic == "ansible/production/tasks/"+id+"/status" {
			out = append(out, l.status.State)
		}
	}
	return out
}

// The worker's own embedded server, as the quick start runs it: MQTT 3.1.1
// publishes at QoS 1 and 2 run tasks, a live subscriber sees queued,
// running and the end in that order, a cancel over MQTT stops a running
// task, and later subscribers get each final status retained at QoS 1, a
// refusal's reason included.
func TestMQTTEmbeddedListener(t *testing.T) {
	t.Parallel()
	ports := freePorts(t, 2)
	port, mqttPort := ports[0], ports[1]
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	startWorker(t, url, workerOpts{Concurrency: 2, NATSExtra: fmt.Sprintf(
		"embedded:\n  enabled: true\n  listen: 127.0.0.1:%d\n  mqtt_listen: 127.0.0.1:%d\n  store_dir: %s", port, mqttPort, t.TempDir())})
	c := connectClient(t, url)
	live := subscribeStatus(t, mqttPort)
	live.waitSubscribed(t, c, url)
	task := func(id, playbook string, vars map[string]any) string {
		return taskJSON(t, map[string]any{"task_id": id, "playbook": playbook, "inventory": "inventory/hosts", "extra_vars": vars})
	}
	mqttPub(t, mqttPort, "mqttv311", 1, "ansible/production/tasks", task("emb-slow", "slow.yml", map[string]any{"seconds": 60}))
	checkFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		if st, err := c.status("production", "emb-slow"); err != nil || st.State != schemas.StateRunning {
			return fmt.Errorf("emb-slow not running yet")
		}
		return nil
	})
	mqttPub(t, mqttPort, "mqttv311", 1, "ansible/production/tasks/emb-slow/cancel", "")
	mqttPub(t, mqttPort, "mqttv311", 1, "ansible/production/tasks", task("emb-1", "steps.yml", map[string]any{"pause": 0.3}))
	mqttPub(t, mqttPort, "mqttv311", 2, "ansible/production/tasks", task("emb-2", "quick.yml", nil))
	mqttPub(t, mqttPort, "mqttv311", 2, "ansible/production/tasks", `{"task_id":"emb-bad","playbook":"quick.yml","inventory":"inventory/hosts","forks":0}`)

	want := map[string]schemas.State{"emb-slow": schemas.StateCancelled, "emb-1": schemas.StateSuccess,
		"emb-2": schemas.StateSuccess, "emb-bad": schemas.StateFailed}
	for id, state := range want {
		require.Equal(t, state, c.waitFinal(t, "production", id, time.Minute).State, id)
	}
	checkFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		for id, state := range want {
			if s := live.states(t, id); len(s) == 0 || s[len(s)-1] != state {
				return fmt.Errorf("%s on MQTT: %v", id, s)
			}
		}
		return nil
	})
	for _, id := range []string{"emb-slow", "emb-1", "emb-2"} {
		s := live.states(t, id)
		require.Equal(t, schemas.StateQueued, s[0], "%s: %v", id, s)
		require.Contains(t, s, schemas.StateRunning, "%s: %v", id, s)
		for i := 1; i < len(s); i++ {
			require.False(t, s[i-1].Final(), "%s: a status after the final one: %v", id, s)
		}
	}
	for id, state := range want {
		payload, qos, retained := mqttRetained(t, mqttPort, "mqttv311", "ansible/production/tasks/"+id+"/status")
		require.True(t, retained, id)
		require.Equal(t, 1, qos, id)
		var st schemas.TaskStatus
		require.NoError(t, json.Unmarshal([]byte(payload), &st))
		require.Equal(t, state, st.State, id)
		if id == "emb-bad" {
			require.Contains(t, st.Err(), "forks must be 1 or more")
		}
	}
}
