package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// mqttSection is the configuration's mqtt section for broker m.
func mqttSection(m *mosquitto, clientID, extra string) string {
	return fmt.Sprintf("mqtt:\n  host: 127.0.0.1\n  port: %d\n  client_id: %s\n%s", m.Port, clientID, indent(extra, "  "))
}

// startGateway runs `ansible-worker gateway` for broker m and waits until
// it is subscribed.
func startGateway(t testing.TB, url string, m *mosquitto, clientID string) *workerProc {
	t.Helper()
	return startWorker(t, url, workerOpts{Command: "gateway", TopExtra: mqttSection(m, clientID, "")})
}

// brokerLog is a live mosquitto_sub (MQTT 5) on every topic of group
// production on the broker.
type brokerLog struct {
	out *syncBuffer
}

func watchBroker(t testing.TB, m *mosquitto) *brokerLog {
	t.Helper()
	b := &brokerLog{out: &syncBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	// QoS 1: mosquitto_sub 2.0.11 at QoS 2 ends with "a network protocol
	// error" under a burst of QoS 2 messages (its own bug).
	cmd := exec.CommandContext(ctx, "mosquitto_sub", "-V", "mqttv5", "-h", "127.0.0.1", "-p", strconv.Itoa(m.Port),
		"-q", "1", "-t", "ansible/production/#", "-F", "%t %p")
	cmd.Stdout, cmd.Stderr = b.out, b.out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	// Subscribed once a probe comes back.
	checkFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		mqttPub(t, m.Port, "mqttv5", 1, "ansible/production/probe", "probe")
		if !strings.Contains(b.out.String(), "ansible/production/probe probe") {
			return fmt.Errorf("the broker watcher is not subscribed yet")
		}
		return nil
	})
	return b
}

// on returns the payloads seen on topic.
func (b *brokerLog) on(topic string) []string {
	var out []string
	for _, l := range strings.Split(b.out.String(), "\n") {
		if p, ok := strings.CutPrefix(l, topic+" "); ok {
			out = append(out, p)
		}
	}
	return out
}

// brokerStatuses returns the retained status of every task of group
// production on the broker.
func brokerStatuses(t testing.TB, m *mosquitto) map[string]schemas.TaskStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// It ends after 2 s without a message (exit 27): every retained one
	// comes at once on subscribing.
	out, _ := exec.CommandContext(ctx, "mosquitto_sub", "-V", "mqttv5", "-h", "127.0.0.1", "-p", strconv.Itoa(m.Port),
		"-q", "1", "-t", "ansible/production/tasks/+/status", "--retained-only", "-W", "2", "-F", "%t %p").Output()
	got := map[string]schemas.TaskStatus{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		topic, payload, ok := strings.Cut(l, " ")
		if !ok {
			continue
		}
		var st schemas.TaskStatus
		require.NoError(t, json.Unmarshal([]byte(payload), &st), l)
		require.Equal(t, "ansible/production/tasks/"+st.TaskID+"/status", topic)
		got[st.TaskID] = st
	}
	return got
}

// publishTasks publishes tasks with one MQTT 5 client (mosquitto_pub -l:
// one message per line) at QoS 2.
func publishTasks(m *mosquitto, ids []string, playbook string) error {
	var lines strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&lines, `{"task_id":%q,"playbook":%q,"inventory":"inventory/hosts"}`+"\n", id, playbook)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "mosquitto_pub", "-V", "mqttv5", "-h", "127.0.0.1", "-p", strconv.Itoa(m.Port),
		"-q", "2", "-t", "ansible/production/tasks", "-l")
	cmd.Stdin = strings.NewReader(lines.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mosquitto_pub: %v: %s", err, out)
	}
	return nil
}

// runs counts, over the workers' logs, how many times task id ran.
func runs(id string, workers ...*workerProc) int {
	re := regexp.MustCompile(`msg="task finished".* task_id=` + regexp.QuoteMeta(id) + ` `)
	n := 0
	for _, w := range workers {
		n += len(re.FindAllString(w.logs.String(), -1))
	}
	return n
}

// requireRanOnce checks that each task ran exactly once (the log line of
// its end follows its final status).
func requireRanOnce(t testing.TB, ids []string, workers ...*workerProc) {
	t.Helper()
	checkFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		for _, id := range ids {
			if n := runs(id, workers...); n != 1 {
				return fmt.Errorf("task %s ran %d times", id, n)
			}
		}
		return nil
	})
}

// takenIn counts the tasks a gateway moved from the broker to NATS.
func takenIn(gw *workerProc) int {
	return strings.Count(gw.logs.String(), `msg="task taken in from MQTT"`)
}

func taskIDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%02d", prefix, i)
	}
	return ids
}

// Two gateways and two workers on one mosquitto broker: 40 tasks published
// by MQTT 5 clients at QoS 2 each run exactly once, the gateways share
// them, every final status is retained on the broker, and nothing echoes.
func TestGatewaySharesTasks(t *testing.T) {
	t.Parallel()
	m := startMosquitto(t, mosqOpts{})
	ns := startServer(t)
	c := connectClient(t, ns.url)
	workers := []*workerProc{startWorker(t, ns.url, workerOpts{Concurrency: 2}), startWorker(t, ns.url, workerOpts{Concurrency: 2})}
	gws := []*workerProc{startGateway(t, ns.url, m, "gw-a"), startGateway(t, ns.url, m, "gw-b")}
	live := watchBroker(t, m)

	ids := taskIDs("share", 40)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for part := range 4 {
		wg.Go(func() { errs <- publishTasks(m, ids[part*10:part*10+10], "quick.yml") })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	// A task submitted over NATS is not sent to the broker's task topic.
	_, stderr, code := runCLI(t, "submit", "-s", ns.url, "--task-id", "from-nats", "--playbook", "quick.yml", "--inventory", "inventory/hosts")
	require.Equal(t, 0, code, stderr)

	for _, id := range append(ids, "from-nats") {
		st := c.waitFinal(t, "production", id, 3*time.Minute)
		require.Equal(t, schemas.StateSuccess, st.State, "%s: %s", id, st.Err())
	}
	requireRanOnce(t, append(ids, "from-nats"), workers...)
	require.Equal(t, 40, takenIn(gws[0])+takenIn(gws[1]), "each task taken in once")
	require.Positive(t, takenIn(gws[0]), "both gateways share the work")
	require.Positive(t, takenIn(gws[1]), "both gateways share the work")

	checkFor(t, 30*time.Second, 200*time.Millisecond, func() error {
		got := brokerStatuses(t, m)
		for _, id := range append(ids, "from-nats") {
			if st, ok := got[id]; !ok || st.State != schemas.StateSuccess {
				return fmt.Errorf("retained status of %s on the broker: %+v", id, st)
			}
		}
		return nil
	})
	require.Len(t, live.on("ansible/production/tasks"), 40, "only the published tasks on the task topic:\n%s", live.out.String())
	for _, id := range append(ids, "from-nats") {
		states := live.on("ansible/production/tasks/" + id + "/status")
		require.NotEmpty(t, states)
		require.Contains(t, states[len(states)-1], `"state":"success"`, "the last status of %s is the final one", id)
	}
}

// A gateway killed with SIGKILL while tasks are being published, and
// started again, loses none of them (the broker kept its session); the
// broker restarted while tasks run: the gateway comes back by itself and
// the final statuses reach the broker.
func TestGatewaySurvivesCrashes(t *testing.T) {
	t.Parallel()
	m := startMosquitto(t, mosqOpts{})
	ns := startServer(t)
	c := connectClient(t, ns.url)
	w := startWorker(t, ns.url, workerOpts{Concurrency: 2})
	gw := startGateway(t, ns.url, m, "gw-crash")

	ids := taskIDs("crash", 16)
	published := make(chan string, len(ids))
	pubErr := make(chan error, 1)
	go func() {
		defer close(published)
		for _, id := range ids {
			if err := publishTasks(m, []string{id}, "quick.yml"); err != nil {
				pubErr <- err
				return
			}
			published <- id
			time.Sleep(100 * time.Millisecond) // a steady stream of publishers
		}
	}()
	waitPublished := func(n int) {
		for range n {
			if _, ok := <-published; !ok {
				t.Fatalf("publisher stopped: %v", <-pubErr)
			}
		}
	}
	waitPublished(4)
	gw.kill()
	waitPublished(6) // published while no gateway runs
	gw2 := startGateway(t, ns.url, m, "gw-crash")
	waitPublished(6)
	for _, id := range ids {
		st := c.waitFinal(t, "production", id, 2*time.Minute)
		require.Equal(t, schemas.StateSuccess, st.State, "%s: %s", id, st.Err())
	}
	requireRanOnce(t, ids, w)
	require.Positive(t, takenIn(gw2), "the restarted gateway took in what came while it was away")

	// The broker goes away while two tasks run.
	slow := []string{"during-restart-1", "during-restart-2"}
	for _, id := range slow {
		mqttPub(t, m.Port, "mqttv5", 2, "ansible/production/tasks", taskJSON(t, map[string]any{"task_id": id,
			"playbook": "steps.yml", "inventory": "inventory/hosts", "extra_vars": map[string]any{"pause": 3}}))
	}
	checkFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		for _, id := range slow {
			if st, err := c.status("production", id); err != nil || st.State != schemas.StateRunning {
				return fmt.Errorf("%s not running yet", id)
			}
		}
		return nil
	})
	m.stop(t)
	m.restart(t)
	for _, id := range slow {
		c.waitFinal(t, "production", id, time.Minute)
	}
	checkFor(t, 60*time.Second, 500*time.Millisecond, func() error {
		got := brokerStatuses(t, m)
		for _, id := range append(ids, slow...) {
			if st, ok := got[id]; !ok || st.State != schemas.StateSuccess {
				return fmt.Errorf("retained status of %s on the broker: %+v", id, st)
			}
		}
		return nil
	})
	require.Contains(t, gw2.logs.String(), "lost the connection to the MQTT broker; reconnecting")
}

// Settings the broker refuses end the gateway at once with exit code 2 and
// a message that names the setting and holds no secret.
func TestGatewayBadSettings(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	users := startMosquitto(t, mosqOpts{Users: map[string]string{"gw": "right-pass-1"}})
	tlsBroker := startMosquitto(t, mosqOpts{TLS: true})
	certBroker := startMosquitto(t, mosqOpts{TLS: true, RequireCert: true})
	const secret = "wrong-Secret-77"
	for _, tc := range []struct {
		name, mqtt, want string
	}{
		{"password", mqttSection(users, "gw-bad", "username: gw\npassword: ${MQTT_PASSWORD}"), "mqtt.username/mqtt.password"},
		{"user", mqttSection(users, "gw-bad", "username: nobody-"+secret), "mqtt.username/mqtt.password"},
		{"ca", mqttSection(tlsBroker, "gw-bad", "tls_enabled: true\ntls_ca_file: "+tlsBroker.OtherCAFile), "mqtt.tls_ca_file"},
		{"system-ca", mqttSection(tlsBroker, "gw-bad", "tls_enabled: true"), "mqtt.tls_ca_file"},
		{"client-cert", mqttSection(certBroker, "gw-bad", "tls_enabled: true\ntls_ca_file: "+certBroker.CAFile), "mqtt.tls_cert_file"},
		{"no-host", "mqtt:\n  port: 1883", "mqtt.host is not set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeConfig(t, ns.url, workerOpts{TopExtra: tc.mqtt})
			stdout, stderr, code := runCLIEnv(t, []string{"MQTT_PASSWORD=" + secret}, "-c", cfg, "gateway")
			require.Equal(t, 2, code, "stdout: %s\nstderr: %s", stdout, stderr)
			require.Contains(t, stderr, tc.want)
			require.NotContains(t, stdout+stderr, "wrong-Secret")
		})
	}
	// A worker whose configuration names the broker runs the gateway too,
	// and stops the same way.
	cfg := writeConfig(t, ns.url, workerOpts{TopExtra: mqttSection(users, "gw-run", "username: gw\npassword: ${MQTT_PASSWORD}")})
	stdout, stderr, code := runCLIEnv(t, []string{"MQTT_PASSWORD=" + secret}, "run", "-c", cfg)
	require.Equal(t, 2, code, "stdout: %s\nstderr: %s", stdout, stderr)
	require.Contains(t, stderr, "mqtt.username/mqtt.password")
	require.NotContains(t, stdout+stderr, "wrong-Secret")

	// The same brokers with the right settings.
	good := map[string]string{
		"user": mqttSection(users, "gw-good-1", "username: gw\npassword: right-pass-1"),
		"tls":  mqttSection(certBroker, "gw-good-2", fmt.Sprintf("tls_enabled: true\ntls_ca_file: %s\ntls_cert_file: %s\ntls_key_file: %s", certBroker.CAFile, certBroker.ClientCert, certBroker.ClientKey)),
	}
	for name, mqtt := range good {
		gw := startWorker(t, ns.url, workerOpts{Command: "gateway", TopExtra: mqtt})
		// Ready (READY=1) only once connected and subscribed.
		checkFor(t, 5*time.Second, 50*time.Millisecond, func() error {
			if !strings.Contains(gw.logs.String(), "MQTT gateway running") {
				return fmt.Errorf("%s: gateway ready before it said it runs", name)
			}
			return nil
		})
		gw.stop(t)
	}
}

// A gateway stopped for good keeps its session, and with it a share of the
// new tasks, until it leaves: `gateway --leave` carries what the broker
// kept for it and ends the session, and every later task goes to the
// gateways that run.
func TestGatewayLeave(t *testing.T) {
	t.Parallel()
	m := startMosquitto(t, mosqOpts{})
	ns := startServer(t)
	c := connectClient(t, ns.url)
	w := startWorker(t, ns.url, workerOpts{Concurrency: 2})
	old := startGateway(t, ns.url, m, "gw-old")
	old.stop(t)
	kept := taskIDs("kept", 3) // published while gw-old is away: kept in its session
	require.NoError(t, publishTasks(m, kept, "quick.yml"))
	gw := startGateway(t, ns.url, m, "gw-new")

	cfg := writeConfig(t, ns.url, workerOpts{TopExtra: mqttSection(m, "gw-old", "")})
	_, stderr, code := runCLI(t, "gateway", "--leave", "-c", cfg)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, 3, strings.Count(stderr, `msg="task taken in from MQTT"`), stderr)
	require.Contains(t, stderr, "left the broker")

	later := taskIDs("later", 6)
	require.NoError(t, publishTasks(m, later, "quick.yml"))
	for _, id := range append(kept, later...) {
		st := c.waitFinal(t, "production", id, 2*time.Minute)
		require.Equal(t, schemas.StateSuccess, st.State, "%s: %s", id, st.Err())
	}
	requireRanOnce(t, append(kept, later...), w)
	require.Equal(t, 6, takenIn(gw), "every later task went to the running gateway")
}

// Bad input on the broker's task topic never stops the gateway, and the
// reason of a refusal reaches the task's status topic when its id can be
// read, whoever refuses it: the gateway (the request) or the worker (the
// paths).
func TestGatewayBadInput(t *testing.T) {
	t.Parallel()
	m := startMosquitto(t, mosqOpts{})
	ns := startServer(t)
	c := connectClient(t, ns.url)
	startWorker(t, ns.url, workerOpts{})
	startGateway(t, ns.url, m, "gw-bad-input")

	big := filepath.Join(t.TempDir(), "big.json")
	require.NoError(t, os.WriteFile(big, []byte(taskJSON(t, map[string]any{"task_id": "gb-big", "playbook": "quick.yml",
		"inventory": "inventory/hosts", "extra_vars": map[string]any{"blob": strings.Repeat("x", 1100<<10)}})), 0o600))
	for _, p := range []string{
		`not json`,
		`{"task_id":"gb-noinv","playbook":"quick.yml"}`,
		`{"task_id":"gb-path","playbook":"../../etc/passwd","inventory":"inventory/hosts"}`,
		`{"task_id":"gb-ok","playbook":"quick.yml","inventory":"inventory/hosts"}`,
	} {
		mqttPub(t, m.Port, "mqttv5", 2, "ansible/production/tasks", p)
	}
	mqttPub(t, m.Port, "mqttv5", 1, "ansible/production/tasks", "") // empty payload
	out, err := exec.Command("mosquitto_pub", "-V", "mqttv5", "-h", "127.0.0.1", "-p", strconv.Itoa(m.Port),
		"-q", "1", "-t", "ansible/production/tasks", "-f", big).CombinedOutput()
	require.NoError(t, err, string(out))

	require.Equal(t, schemas.StateSuccess, c.waitFinal(t, "production", "gb-ok", time.Minute).State)
	// The same id again, now invalid: the first task's status stays.
	mqttPub(t, m.Port, "mqttv5", 2, "ansible/production/tasks", `{"task_id":"gb-ok","playbook":"quick.yml"}`)
	mqttPub(t, m.Port, "mqttv5", 2, "ansible/production/tasks", `{"task_id":"gb-last","playbook":"quick.yml","inventory":"inventory/hosts"}`)
	require.Equal(t, schemas.StateSuccess, c.waitFinal(t, "production", "gb-last", time.Minute).State)

	want := map[string]string{
		"gb-noinv": "inventory",
		"gb-path":  "outside the playbook directory",
		"gb-big":   "the limit is 1048576",
		"gb-ok":    "",
		"gb-last":  "",
	}
	checkFor(t, 30*time.Second, 200*time.Millisecond, func() error {
		got := brokerStatuses(t, m)
		for id, reason := range want {
			st, ok := got[id]
			switch {
			case !ok:
				return fmt.Errorf("no retained status of %s", id)
			case reason == "" && st.State != schemas.StateSuccess:
				return fmt.Errorf("%s: %s %s", id, st.State, st.Err())
			case reason != "" && (st.State != schemas.StateFailed || !strings.Contains(st.Err(), reason)):
				return fmt.Errorf("%s: %s %q, want failed with %q", id, st.State, st.Err(), reason)
			}
		}
		return nil
	})
}
