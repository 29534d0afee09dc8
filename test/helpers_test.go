// Package test holds ansible-worker's end-to-end tests. They run the real
// binary, a real embedded nats-server with JetStream, the real
// ansible-playbook and ansible-runner, the real nats CLI and mosquitto
// clients: nothing is mocked.
package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
	schemadocs "github.com/ansible-worker/ansible-worker/schemas/jsonschema"
	"github.com/ansible-worker/ansible-worker/schemas/jsonschema/validate"
)

// binary is the ansible-worker executable built once for the package.
var binary string

// validator checks every status, event and runner status the tests read
// against the published JSON Schemas.
var validator *validate.Validator

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "aw-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "ansible-worker")
	if validator, err = validate.New(); err != nil {
		fmt.Fprintln(os.Stderr, "JSON Schemas:", err)
		os.Exit(1)
	}
	args := []string{"build", "-o", binary}
	if os.Getenv("AW_TEST_RACE") == "1" {
		args = append(args, "-race") // the binary under test with the race detector
	}
	build := exec.Command("go", append(args, "../cmd/ansible-worker")...)
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build ansible-worker:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if left := leftoverPlaybooks(10 * time.Second); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "ansible-playbook processes left after the suite: %v\n", left)
		code = 1
	}
	os.Exit(code)
}

// envTestWarmStart=false runs every worker of the suite with warm starts
// off (scripts/test.sh --cold): the suite passes in both modes.
const envTestWarmStart = "AW_TEST_WARM_START"

// playbookDir is the directory of the test playbooks.
func playbookDir(t testing.TB) string {
	t.Helper()
	d, err := filepath.Abs("testdata/playbooks")
	require.NoError(t, err)
	return d
}

// checkFor polls f every interval until it returns nil or total has passed.
func checkFor(t testing.TB, total, interval time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(interval)
	}
	t.Fatalf("condition not met after %s: %v", total, err)
}

// natsServer is an embedded nats-server with JetStream and MQTT on random
// loopback ports.
type natsServer struct {
	srv      *server.Server
	url      string
	mqttPort int
	storeDir string
}

func startServer(t testing.TB) *natsServer {
	t.Helper()
	return startServerAt(t, t.TempDir(), -1)
}

// startServerAt starts a server on port (-1: random) with its JetStream
// store in storeDir, so a restart on the same two keeps every stream.
func startServerAt(t testing.TB, storeDir string, port int) *natsServer {
	t.Helper()
	o := &server.Options{
		ServerName: "aw-test", Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: storeDir,
		NoLog: true, NoSigs: true, JetStreamMaxMemory: 256 << 20, JetStreamMaxStore: 1 << 30,
		MQTT: server.MQTTOpts{Host: "127.0.0.1", Port: -1},
	}
	s, err := server.NewServer(o)
	require.NoError(t, err)
	go s.Start()
	require.True(t, s.ReadyForConnections(10*time.Second), "nats-server not ready")
	ns := &natsServer{srv: s, url: s.ClientURL(), mqttPort: o.MQTT.Port, storeDir: storeDir}
	t.Cleanup(ns.stop)
	return ns
}

func (ns *natsServer) stop() {
	ns.srv.Shutdown()
	ns.srv.WaitForShutdown()
}

// client is a test-side NATS connection.
type client struct {
	nc *nats.Conn
	js jetstream.JetStream
}

func connectClient(t testing.TB, url string) *client {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return &client{nc: nc, js: js}
}

// status reads a task's TaskStatus, or returns an error.
func (c *client) status(group, id string) (*schemas.TaskStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	kv, err := c.js.KeyValue(ctx, jsbridge.StatusBucket)
	if err != nil {
		return nil, err
	}
	e, err := kv.Get(ctx, group+"."+id)
	if err != nil {
		return nil, err
	}
	if err := validator.Validate(schemadocs.TaskStatus, e.Value()); err != nil {
		return nil, fmt.Errorf("status of %s does not fit its JSON Schema: %w: %s", id, err, e.Value())
	}
	st, err := schemas.ParseTaskStatus(e.Value())
	return &st, err
}

// waitFinal waits until the task reaches a final state and returns it.
func (c *client) waitFinal(t testing.TB, group, id string, total time.Duration) *schemas.TaskStatus {
	t.Helper()
	var st *schemas.TaskStatus
	checkFor(t, total, 100*time.Millisecond, func() error {
		s, err := c.status(group, id)
		if err != nil {
			return err
		}
		if !s.State.Final() {
			return fmt.Errorf("task %s is %s", id, s.State)
		}
		st = s
		return nil
	})
	return st
}

// runnerMsg is one message of ANSIBLE_EVENTS.
type runnerMsg struct {
	Subject string
	Header  nats.Header
	Event   *schemas.Event
	Status  *schemas.RunnerStatus
}

// runnerMessages returns every stored event and runner status of a task, in
// stream order.
func (c *client) runnerMessages(t testing.TB, id string) []runnerMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.js.Stream(ctx, jsbridge.EventsStream)
	require.NoError(t, err)
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(jsbridge.TaskRunnerFilter(id)))
	require.NoError(t, err)
	var total uint64
	for _, n := range info.State.Subjects {
		total += n
	}
	var out []runnerMsg
	if total == 0 {
		return out
	}
	cons, err := c.js.OrderedConsumer(ctx, jsbridge.EventsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{jsbridge.TaskRunnerFilter(id)},
	})
	require.NoError(t, err)
	for uint64(len(out)) < total {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		require.NoError(t, err)
		rm := runnerMsg{Subject: m.Subject(), Header: m.Headers()}
		schema := schemadocs.RunnerStatus
		if strings.HasSuffix(m.Subject(), ".event") {
			schema = schemadocs.Event
		}
		require.NoError(t, validator.Validate(schema, m.Data()), "%s: %s", m.Subject(), m.Data())
		if strings.HasSuffix(m.Subject(), ".event") {
			rm.Event = &schemas.Event{}
			require.NoError(t, json.Unmarshal(m.Data(), rm.Event))
		} else {
			rm.Status = &schemas.RunnerStatus{}
			require.NoError(t, json.Unmarshal(m.Data(), rm.Status))
		}
		out = append(out, rm)
	}
	return out
}

func events(msgs []runnerMsg) []*schemas.Event {
	var out []*schemas.Event
	for _, m := range msgs {
		if m.Event != nil {
			out = append(out, m.Event)
		}
	}
	return out
}

// workerOpts shape a worker's configuration file.
type workerOpts struct {
	Group       string
	Concurrency int
	Extra       string // more YAML under worker:
	NATSExtra   string // more YAML under nats:
	Env         []string
	PlaybookDir string // default testdata/playbooks
	TopExtra    string // more top-level YAML
	Command     string // the ansible-worker command: "run" (default) or "gateway"
	DataDir     string // worker.data_dir; default a new temporary directory
}

// workerProc is a running ansible-worker process.
type workerProc struct {
	cmd  *exec.Cmd
	id   string
	logs *syncBuffer
	done chan struct{}
}

// writeConfig writes a worker configuration for the server at url.
func writeConfig(t testing.TB, url string, o workerOpts) string {
	t.Helper()
	if o.Group == "" {
		o.Group = "production"
	}
	if o.Concurrency == 0 {
		o.Concurrency = 1
	}
	if o.PlaybookDir == "" {
		o.PlaybookDir = playbookDir(t)
	}
	dir := t.TempDir()
	if o.DataDir == "" {
		o.DataDir = filepath.Join(dir, "data")
	}
	if os.Getenv(envTestWarmStart) == "false" {
		o.Extra = "warm_start: false\n" + o.Extra
	}
	cfg := fmt.Sprintf(`log_level: DEBUG
worker:
  group_name: %s
  playbook_directory: %s
  concurrency: %d
  data_dir: %s
  status_interval: 1
%s
nats:
  servers: [%q]
  headers:
    producer: ansible-worker-test
%s
%s
`, o.Group, o.PlaybookDir, o.Concurrency, o.DataDir, indent(o.Extra, "  "), url, indent(o.NATSExtra, "  "), o.TopExtra)
	path := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	return path
}

func indent(s, pre string) string {
	if s == "" {
		return ""
	}
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = pre + l
	}
	return strings.Join(lines, "\n")
}

var workerSeq struct {
	sync.Mutex
	n int
}

// startWorker runs `ansible-worker run` against the server at url and waits
// until it has provisioned its consumer.
func startWorker(t testing.TB, url string, o workerOpts) *workerProc {
	t.Helper()
	wp, ready := launchWorker(t, url, o)
	ready.wait(t, 20*time.Second, wp.done, wp.logs.String)
	return wp
}

// launchWorker is startWorker without the wait: the worker says it is
// ready on the returned socket.
func launchWorker(t testing.TB, url string, o workerOpts) (*workerProc, *notifySocket) {
	t.Helper()
	workerSeq.Lock()
	workerSeq.n++
	id := fmt.Sprintf("w%d", workerSeq.n)
	workerSeq.Unlock()
	o.Extra = "worker_id: " + id + "\n" + o.Extra
	cfg := writeConfig(t, url, o)
	wp := &workerProc{id: id, logs: &syncBuffer{}, done: make(chan struct{})}
	ready := newNotifySocket(t)
	if o.Command == "" {
		o.Command = "run"
	}
	wp.cmd = exec.Command(binary, o.Command, "-c", cfg)
	wp.cmd.Env = append(append(os.Environ(), o.Env...), ready.env())
	wp.cmd.Stdout = wp.logs
	wp.cmd.Stderr = wp.logs
	require.NoError(t, wp.cmd.Start())
	go func() { _ = wp.cmd.Wait(); close(wp.done) }()
	t.Cleanup(func() {
		wp.stop(t)
		if strings.Contains(wp.logs.String(), "WARNING: DATA RACE") {
			t.Errorf("data race in worker %s (AW_TEST_RACE=1 build)", wp.id)
		}
		if t.Failed() {
			t.Logf("worker %s log:\n%s", wp.id, wp.logs.String())
		}
	})
	return wp, ready
}

// notifySocket is where a worker says it is ready, the systemd way
// (sd_notify READY=1 on $NOTIFY_SOCKET).
type notifySocket struct {
	conn *net.UnixConn
	path string
}

func newNotifySocket(t testing.TB) *notifySocket {
	t.Helper()
	dir, err := os.MkdirTemp("", "aw-notify-") // short: socket paths are bounded
	require.NoError(t, err)
	path := filepath.Join(dir, "sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(); os.RemoveAll(dir) })
	return &notifySocket{conn: conn, path: path}
}

// env is the variable that tells a worker where to say it is ready.
func (n *notifySocket) env() string { return "NOTIFY_SOCKET=" + n.path }

// wait returns once the worker said READY=1; it fails the test when the
// worker exits first or total passes.
func (n *notifySocket) wait(t testing.TB, total time.Duration, exited <-chan struct{}, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(total)
	buf := make([]byte, 256)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Fatalf("worker exited before it was ready:\n%s", logs())
		default:
		}
		_ = n.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		k, err := n.conn.Read(buf)
		if err == nil && strings.Contains(string(buf[:k]), "READY=1") {
			return
		}
	}
	t.Fatalf("worker not ready after %s:\n%s", total, logs())
}

// kill ends the process with SIGKILL, as a crash would.
func (wp *workerProc) kill() {
	_ = wp.cmd.Process.Kill()
	<-wp.done
}

// stop sends SIGTERM and waits for the worker to exit.
func (wp *workerProc) stop(t testing.TB) {
	select {
	case <-wp.done:
		return
	default:
	}
	_ = wp.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-wp.done:
	case <-time.After(60 * time.Second):
		_ = wp.cmd.Process.Kill()
		<-wp.done
		t.Errorf("worker %s did not stop on SIGTERM", wp.id)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// natsCLI runs the real nats CLI against url.
func natsCLI(t testing.TB, url string, args ...string) (string, error) {
	t.Helper()
	return natsCLIStdin(t, url, "", args...)
}

// natsCLIStdin is natsCLI with stdin as the input (a message body).
func natsCLIStdin(t testing.TB, url, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nats", append([]string{"--server", url}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// runCLI runs the ansible-worker binary and returns its stdout, stderr and
// exit code.
func runCLI(t testing.TB, args ...string) (string, string, int) {
	t.Helper()
	return runCLIEnv(t, nil, args...)
}

// runCLIEnv is runCLI with env added to the test's environment.
func runCLIEnv(t testing.TB, env []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		require.True(t, ok, "run %v: %v", args, err)
		code = ee.ExitCode()
	}
	return out.String(), errOut.String(), code
}

// taskJSON encodes a task request.
func taskJSON(t testing.TB, fields map[string]any) string {
	t.Helper()
	b, err := json.Marshal(fields)
	require.NoError(t, err)
	return string(b)
}

// playRecap runs ansible-playbook directly and sums its PLAY RECAP.
func playRecap(t testing.TB, playbook string, extra ...string) schemas.Counts {
	t.Helper()
	args := append([]string{"-i", "inventory/hosts", playbook}, extra...)
	cmd := exec.Command("ansible-playbook", args...)
	cmd.Dir = playbookDir(t)
	cmd.Env = append(os.Environ(), "ANSIBLE_NOCOLOR=1")
	out, _ := cmd.CombinedOutput()
	var c schemas.Counts
	inRecap := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "PLAY RECAP") {
			inRecap = true
			continue
		}
		if !inRecap || !strings.Contains(line, " : ") {
			continue
		}
		_, stats, _ := strings.Cut(line, " : ")
		for _, f := range strings.Fields(stats) {
			k, v, _ := strings.Cut(f, "=")
			var n int
			fmt.Sscan(v, &n)
			switch k {
			case "ok":
				c.OK += n
			case "changed":
				c.Changed += n
			case "failed":
				c.Failed += n
			case "skipped":
				c.Skipped += n
			case "unreachable":
				c.Unreachable += n
			}
		}
	}
	require.True(t, inRecap, "no PLAY RECAP in:\n%s", out)
	return c
}

// leftoverPlaybooks waits up to total for every ansible-playbook process
// started from the test playbook directory to be gone, and returns those that
// are not.
func leftoverPlaybooks(total time.Duration) []string {
	dir, _ := filepath.Abs("testdata/playbooks")
	deadline := time.Now().Add(total)
	for {
		var left []string
		procs, _ := filepath.Glob("/proc/[0-9]*")
		for _, p := range procs {
			cwd, err := os.Readlink(p + "/cwd")
			if err != nil || !strings.HasPrefix(cwd, dir) {
				continue
			}
			cmd, _ := os.ReadFile(p + "/cmdline")
			if strings.Contains(string(cmd), "ansible") {
				left = append(left, filepath.Base(p)+": "+strings.ReplaceAll(string(cmd), "\x00", " "))
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// waitQueueEmpty waits until no task of group production is left in the
// tasks stream, as the nats CLI sees it.
func waitQueueEmpty(t testing.TB, url string) {
	t.Helper()
	checkFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		out, err := natsCLI(t, url, "stream", "subjects", "ANSIBLE_TASKS", "--json")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		if strings.Contains(out, "ansible.production.tasks") {
			return fmt.Errorf("tasks left in the queue: %s", out)
		}
		return nil
	})
}

// jsPub submits task to subject with the real nats CLI as a JetStream
// publish carrying Nats-Msg-Id: id, and returns the CLI's output.
func jsPub(t testing.TB, url, subject, id, task string) string {
	t.Helper()
	out, err := natsCLI(t, url, "pub", "--jetstream", "-H", "Nats-Msg-Id:"+id, subject, task)
	require.NoError(t, err, out)
	return out
}
