package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// natsServerModule is the module whose nats-server command the cluster
// tests run: the version go.mod already requires for the embedded server.
const natsServerModule = "github.com/nats-io/nats-server/v2"

// natsServerBuild is the nats-server binary, built at most once per test
// binary run (the first cluster test builds it).
var natsServerBuild struct {
	once sync.Once
	path string
	err  error
}

// natsServerBinary returns the path of a nats-server executable built from
// the module version in go.mod. It is kept under os.TempDir in a directory
// named after that version, so later runs (and other checkouts) on the
// same version reuse it instead of linking it again.
func natsServerBinary(t testing.TB) string {
	t.Helper()
	natsServerBuild.once.Do(func() {
		natsServerBuild.path, natsServerBuild.err = buildNATSServer()
	})
	require.NoError(t, natsServerBuild.err)
	return natsServerBuild.path
}

// buildNATSServer builds nats-server from the module go.mod requires, or
// finds the one an earlier run built from the same version.
func buildNATSServer() (string, error) {
	// A test binary carries no module versions: ask go.mod.
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", natsServerModule).Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w", natsServerModule, err)
	}
	dir := filepath.Join(os.TempDir(), "aw-nats-server-"+strings.TrimSpace(string(out)))
	path := filepath.Join(dir, "nats-server")
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() && st.Mode()&0o100 != 0 {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("nats-server build directory: %w", err)
	}
	// Built under a temporary name and renamed: a concurrent run never
	// sees a half-written binary.
	tmp := fmt.Sprintf("%s.%d", path, os.Getpid())
	build := exec.Command("go", "build", "-o", tmp, natsServerModule)
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", natsServerModule, err, out)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("install nats-server: %w", err)
	}
	return path, nil
}

// clusterNode is one nats-server process of a natsCluster. Its ports and
// store stay the same across restarts.
type clusterNode struct {
	name                        string
	port, clusterPort, httpPort int
	url                         string
	storeDir, conf              string
	logs                        *syncBuffer // every run's output, in turn
	cmd                         *exec.Cmd
	done                        chan struct{}
}

// natsCluster is three nats-server processes on loopback forming one
// JetStream cluster, each with a client, a cluster and a monitoring port.
type natsCluster struct {
	bin   string
	nodes []*clusterNode
}

// newClusterNodes returns the three nodes of a test cluster, n1 to n3: each
// with a client, a cluster and a monitoring port, all distinct, and a store.
func newClusterNodes(t testing.TB) []*clusterNode {
	t.Helper()
	ports := freePorts(t, 9)
	var nodes []*clusterNode
	for i, name := range []string{"n1", "n2", "n3"} {
		p := ports[3*i:]
		nodes = append(nodes, &clusterNode{name: name, port: p[0], clusterPort: p[1], httpPort: p[2],
			url: fmt.Sprintf("nats://127.0.0.1:%d", p[0]), storeDir: t.TempDir()})
	}
	return nodes
}

// clusterName is the name of every test cluster.
const clusterName = "aw-test"

// startCluster starts a three-node cluster and waits until it is ready:
// each node healthy, a JetStream meta leader, and JetStream answering
// through every node. Every node is killed when the test ends; when it
// failed, their logs are shown.
func startCluster(t testing.TB) *natsCluster {
	t.Helper()
	cl := &natsCluster{bin: natsServerBinary(t), nodes: newClusterNodes(t)}
	dir := t.TempDir()
	for _, n := range cl.nodes {
		n.logs = &syncBuffer{}
		n.conf = filepath.Join(dir, n.name+".conf")
		require.NoError(t, os.WriteFile(n.conf, []byte(cl.config(n)), 0o600))
	}
	t.Cleanup(func() {
		for _, n := range cl.nodes {
			n.kill()
		}
		if t.Failed() {
			for _, n := range cl.nodes {
				t.Logf("nats-server %s log (last 16 KiB):\n%s", n.name, tail(n.logs.String(), 16<<10))
			}
		}
	})
	for _, n := range cl.nodes {
		cl.start(t, n)
	}
	cl.waitReady(t, 60*time.Second)
	return cl
}

// config is n's nats-server configuration: routes to all three nodes (a
// node ignores the one to itself), JetStream stored in n.storeDir.
func (cl *natsCluster) config(n *clusterNode) string {
	var routes []string
	for _, o := range cl.nodes {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", o.clusterPort))
	}
	return fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
jetstream {
  store_dir: %q
  max_memory_store: 256MB
  max_file_store: 1GB
}
cluster {
  name: %s
  listen: 127.0.0.1:%d
  routes: [%s]
}
`, n.name, n.port, n.httpPort, n.storeDir, clusterName, n.clusterPort, strings.Join(routes, ", "))
}

// start runs n's nats-server process; it does not wait for it.
func (cl *natsCluster) start(t testing.TB, n *clusterNode) {
	t.Helper()
	fmt.Fprintf(n.logs, "--- %s starts at %s\n", n.name, time.Now().Format(time.TimeOnly))
	n.cmd = exec.Command(cl.bin, "-c", n.conf)
	n.cmd.Stdout, n.cmd.Stderr = n.logs, n.logs
	require.NoError(t, n.cmd.Start())
	n.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(n.cmd, n.done)
}

// restart starts a killed node again on its ports and store, and waits
// until the whole cluster is ready again (the node caught up).
func (cl *natsCluster) restart(t testing.TB, n *clusterNode) {
	t.Helper()
	cl.start(t, n)
	cl.waitReady(t, 60*time.Second)
}

// kill ends n with SIGKILL, as a crash would, and waits until it is gone.
func (n *clusterNode) kill() {
	if !n.running() {
		return
	}
	_ = n.cmd.Process.Kill()
	<-n.done
	fmt.Fprintf(n.logs, "--- %s killed at %s\n", n.name, time.Now().Format(time.TimeOnly))
}

// running reports whether n's process is up.
func (n *clusterNode) running() bool {
	if n.done == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// urls are the client URLs of every node.
func (cl *natsCluster) urls() []string {
	var out []string
	for _, n := range cl.nodes {
		out = append(out, n.url)
	}
	return out
}

// url is every node's client URL, comma-separated, as nats.Connect and
// RUNNER_NATS_SERVERS take a list.
func (cl *natsCluster) url() string { return strings.Join(cl.urls(), ",") }

// workerEnv makes a worker list every node in nats.servers (through
// RUNNER_NATS_SERVERS, which replaces the configuration file's list).
func (cl *natsCluster) workerEnv() string { return "RUNNER_NATS_SERVERS=" + cl.url() }

// waitReady waits until every running node answers /healthz with ok
// (JetStream enabled, the meta leader known and every stream and consumer
// it holds current), the cluster has a meta leader, and JetStream answers
// through each running node.
func (cl *natsCluster) waitReady(t testing.TB, total time.Duration) {
	t.Helper()
	checkFor(t, total, 100*time.Millisecond, func() error {
		for _, n := range cl.nodes {
			if !n.running() {
				continue
			}
			if err := n.healthy(); err != nil {
				return err
			}
			if err := n.jetStreamAnswers(); err != nil {
				return err
			}
		}
		return nil
	})
}

// healthy checks n's /healthz and that its view of the cluster has a
// meta leader.
func (n *clusterNode) healthy() error {
	var health struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	}
	if err := n.monitor("/healthz", &health); err != nil {
		return err
	}
	if health.Status != "ok" {
		return fmt.Errorf("%s: healthz %s: %s", n.name, health.Status, health.Error)
	}
	var jsz struct {
		Meta *struct {
			Leader string `json:"leader"`
		} `json:"meta_cluster"`
	}
	if err := n.monitor("/jsz", &jsz); err != nil {
		return err
	}
	if jsz.Meta == nil || jsz.Meta.Leader == "" {
		return fmt.Errorf("%s: no JetStream meta leader yet", n.name)
	}
	return nil
}

// jetStreamAnswers checks that a JetStream request through n gets an
// answer.
func (n *clusterNode) jetStreamAnswers() error {
	nc, err := nats.Connect(n.url, nats.Timeout(time.Second), nats.NoReconnect())
	if err != nil {
		return fmt.Errorf("%s: %w", n.name, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("%s: %w", n.name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("%s: JetStream account info: %w", n.name, err)
	}
	return nil
}

// monitor reads a JSON document of n's monitoring port into v.
func (n *clusterNode) monitor(path string, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", n.httpPort, path), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", n.name, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", n.name, path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %s: %w: %s", n.name, path, err, b)
	}
	return nil
}

// nodeOf returns the running node that has a client connection named
// name (a worker's is "ansible-worker <worker_id>"), or an error.
func (cl *natsCluster) nodeOf(name string) (*clusterNode, error) {
	for _, n := range cl.nodes {
		if !n.running() {
			continue
		}
		var connz struct {
			Conns []struct {
				Name string `json:"name"`
			} `json:"connections"`
		}
		if err := n.monitor("/connz?limit=4096", &connz); err != nil {
			return nil, err
		}
		for _, c := range connz.Conns {
			if c.Name == name {
				return n, nil
			}
		}
	}
	return nil, fmt.Errorf("no running node has a connection named %q", name)
}

// workerConn is the name of a test worker's NATS connection.
func workerConn(w *workerProc) string { return "ansible-worker " + w.id }

// tail is the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// localStreamState is a stream's state as one node stores it.
type localStreamState struct {
	Msgs    uint64 `json:"messages"`
	LastSeq uint64 `json:"last_seq"`
}

// streamState reads n's own copy of stream from its /jsz.
func (n *clusterNode) streamState(stream string) (localStreamState, error) {
	var jsz struct {
		Accounts []struct {
			Streams []struct {
				Name  string           `json:"name"`
				State localStreamState `json:"state"`
			} `json:"stream_detail"`
		} `json:"account_details"`
	}
	if err := n.monitor("/jsz?accounts=true&streams=true", &jsz); err != nil {
		return localStreamState{}, err
	}
	for _, a := range jsz.Accounts {
		for _, s := range a.Streams {
			if s.Name == stream {
				return s.State, nil
			}
		}
	}
	return localStreamState{}, fmt.Errorf("%s holds no copy of %s", n.name, stream)
}

// clusterRunnerMessages is c.runnerMessages, tried again for up to 20 s
// while it fails: in a cluster a request can meet a moment without a
// leader, or a new consumer's interest not yet known to every server (no
// responders).
func clusterRunnerMessages(t testing.TB, c *client, id string) []runnerMsg {
	t.Helper()
	var msgs []runnerMsg
	eventually(t, 20*time.Second, func(tb testing.TB) { msgs = c.runnerMessages(tb, id) })
	return msgs
}

// eventually runs f until it passes or total has passed, then fails t with
// f's last failure. f gets a testing.TB on which a failure (require's
// included) ends that try only.
func eventually(t testing.TB, total time.Duration, f func(testing.TB)) {
	t.Helper()
	checkFor(t, total, 200*time.Millisecond, func() error {
		try := &tryTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			f(try)
		}()
		<-done
		return try.err
	})
}

// tryTB is a testing.TB whose failures are recorded in err and end the
// goroutine (runtime.Goexit, as FailNow does) instead of failing the test.
type tryTB struct {
	testing.TB
	err error
}

func (tb *tryTB) Helper()                           {}
func (tb *tryTB) Fail()                             { tb.fail("failed") }
func (tb *tryTB) FailNow()                          { tb.fail("failed"); runtime.Goexit() }
func (tb *tryTB) Failed() bool                      { return tb.err != nil }
func (tb *tryTB) Error(args ...any)                 { tb.fail(fmt.Sprint(args...)) }
func (tb *tryTB) Errorf(format string, args ...any) { tb.fail(fmt.Sprintf(format, args...)) }
func (tb *tryTB) Fatal(args ...any)                 { tb.Error(args...); runtime.Goexit() }
func (tb *tryTB) Fatalf(format string, args ...any) {
	tb.Errorf(format, args...)
	runtime.Goexit()
}

func (tb *tryTB) fail(msg string) {
	if tb.err == nil {
		tb.err = errors.New(msg)
	}
}
