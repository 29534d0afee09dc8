package jsbridge

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/config"
)

// embeddedConfig returns a configuration with the embedded server on free
// ports and a fresh store, and fast client timeouts.
func embeddedConfig(t *testing.T, mqtt bool) *config.Config {
	t.Helper()
	c := config.DefaultConfig()
	c.NATS.Embedded.Enabled = true
	c.NATS.Embedded.Listen = "127.0.0.1:-1"
	c.NATS.Embedded.StoreDir = t.TempDir()
	if mqtt {
		c.NATS.Embedded.MQTTListen = "127.0.0.1:-1"
	}
	c.NATS.Options.ConnectTimeout = 2
	return c
}

func startEmbedded(t *testing.T, c *config.Config) *Embedded {
	t.Helper()
	e, err := StartEmbedded(c, nil)
	require.NoError(t, err)
	t.Cleanup(e.Shutdown)
	return e
}

// clientConfig returns c aimed at the embedded server e.
func clientConfig(c *config.Config, e *Embedded) *config.Config {
	cc := *c
	cc.NATS.Servers = config.StringList{e.ClientURL()}
	return &cc
}

func connect(t *testing.T, c *config.Config, extra ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := Connect(context.Background(), c, "test", nil, extra...)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

func TestEmbeddedStartStop(t *testing.T) {
	c := embeddedConfig(t, false)
	e := startEmbedded(t, c)
	require.True(t, strings.HasPrefix(e.ClientURL(), "nats://127.0.0.1:"), e.ClientURL())
	require.NotEqual(t, "nats://127.0.0.1:-1", e.ClientURL())
	require.Empty(t, e.MQTTAddr())
	require.NotNil(t, e.Server())
	require.True(t, strings.HasPrefix(e.Server().Name(), "ansible-worker-"), e.Server().Name())
	require.True(t, e.Server().JetStreamEnabled())

	// Over TCP and in-process.
	nc := connect(t, clientConfig(c, e))
	require.True(t, nc.IsConnected())
	ip := connect(t, c, e.InProcessOption())
	require.True(t, ip.IsConnected())
	js, err := jetstream.New(ip)
	require.NoError(t, err)
	_, err = js.AccountInfo(context.Background())
	require.NoError(t, err)

	e.Shutdown()
	e.Shutdown() // twice is fine
	cc := clientConfig(c, e)
	_, err = Connect(context.Background(), cc, "test", nil)
	require.ErrorIs(t, err, ErrUnreachable)
}

func TestEmbeddedPersistsAcrossRestart(t *testing.T) {
	c := embeddedConfig(t, false)
	ctx := context.Background()

	e := startEmbedded(t, c)
	nc := connect(t, c, e.InProcessOption())
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "KEEP", Subjects: []string{"keep.>"}})
	require.NoError(t, err)
	_, err = js.Publish(ctx, "keep.one", []byte("still here"))
	require.NoError(t, err)
	nc.Close()
	e.Shutdown()

	e2 := startEmbedded(t, c) // same store_dir
	nc2 := connect(t, c, e2.InProcessOption())
	js2, err := jetstream.New(nc2)
	require.NoError(t, err)
	s, err := js2.Stream(ctx, "KEEP")
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(1), info.State.Msgs)
	msg, err := s.GetMsg(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, "keep.one", msg.Subject)
	require.Equal(t, "still here", string(msg.Data))
}

func TestEmbeddedPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	c := embeddedConfig(t, false)
	c.NATS.Embedded.Listen = l.Addr().String()
	start := time.Now()
	_, err = StartEmbedded(c, nil)
	require.Error(t, err)
	require.Contains(t, err.Error(), l.Addr().String())
	require.Contains(t, err.Error(), "address already in use")
	require.Less(t, time.Since(start), 5*time.Second, "a taken port must fail fast")
}

func TestEmbeddedBadStoreDir(t *testing.T) {
	c := embeddedConfig(t, false)
	c.NATS.Embedded.StoreDir = "/dev/null/store" // cannot be created
	_, err := StartEmbedded(c, nil)
	require.Error(t, err)
	require.Contains(t, err.Error(), "/dev/null/store")
}

// mosquittoPub publishes one MQTT 3.1.1 message with mosquitto_pub.
func mosquittoPub(t *testing.T, addr, topic, payload string, args ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("mosquitto_pub")
	if err != nil {
		t.Fatal("mosquitto_pub is not installed: run scripts/deps.sh (apt-get install mosquitto-clients)")
	}
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	argv := append([]string{"-h", host, "-p", port, "-V", "mqttv311", "-q", "1", "-t", topic, "-m", payload}, args...)
	out, err := exec.CommandContext(ctx, bin, argv...).CombinedOutput()
	return string(out), err
}

func TestEmbeddedMQTT(t *testing.T) {
	c := embeddedConfig(t, true)
	e := startEmbedded(t, c)
	require.NotEmpty(t, e.MQTTAddr())
	_, port, err := net.SplitHostPort(e.MQTTAddr())
	require.NoError(t, err)
	require.NotEqual(t, "-1", port)
	require.NotEqual(t, "0", port)

	nc := connect(t, clientConfig(c, e))
	sub, err := nc.SubscribeSync("ansible.production.tasks")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	out, err := mosquittoPub(t, e.MQTTAddr(), "ansible/production/tasks", `{"task_id":"t1"}`, "-i", "aw-test-pub")
	require.NoError(t, err, out)
	msg, err := sub.NextMsg(5 * time.Second)
	require.NoError(t, err)
	require.JSONEq(t, `{"task_id":"t1"}`, string(msg.Data))
}

func TestEmbeddedUserPassword(t *testing.T) {
	c := embeddedConfig(t, true)
	c.NATS.Username, c.NATS.Password = "worker", "s3cret-pw"
	e := startEmbedded(t, c)

	// Right credentials: over TCP and in-process.
	nc := connect(t, clientConfig(c, e))
	require.True(t, nc.IsConnected())
	connect(t, c, e.InProcessOption())

	// Wrong password, and none.
	bad := clientConfig(c, e)
	bad.NATS.Password = "wrong-pw"
	_, err := Connect(context.Background(), bad, "test", nil)
	requireSettingsError(t, err)
	require.ErrorIs(t, err, nats.ErrAuthorization)
	require.NotContains(t, err.Error(), "wrong-pw")
	none := clientConfig(c, e)
	none.NATS.Username, none.NATS.Password = "", ""
	_, err = Connect(context.Background(), none, "test", nil)
	require.ErrorIs(t, err, nats.ErrAuthorization)

	// MQTT clients need the same user and password.
	sub, err := nc.SubscribeSync("ansible.production.tasks")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	out, err := mosquittoPub(t, e.MQTTAddr(), "ansible/production/tasks", "hello", "-u", "worker", "-P", "wrong")
	require.Error(t, err, out)
	out, err = mosquittoPub(t, e.MQTTAddr(), "ansible/production/tasks", "hello", "-u", "worker", "-P", "s3cret-pw")
	require.NoError(t, err, out)
	msg, err := sub.NextMsg(5 * time.Second)
	require.NoError(t, err)
	require.Equal(t, "hello", string(msg.Data))
}

func TestEmbeddedToken(t *testing.T) {
	c := embeddedConfig(t, true)
	c.NATS.Token = "s3cret-token"
	e := startEmbedded(t, c)

	nc := connect(t, clientConfig(c, e))
	require.True(t, nc.IsConnected())

	bad := clientConfig(c, e)
	bad.NATS.Token = "wrong-token"
	_, err := Connect(context.Background(), bad, "test", nil)
	requireSettingsError(t, err)
	require.ErrorIs(t, err, nats.ErrAuthorization)
	require.NotContains(t, err.Error(), "wrong-token")

	// A token in the URL works too, and is redacted in errors.
	url := clientConfig(c, e)
	url.NATS.Token = ""
	url.NATS.Servers = config.StringList{strings.Replace(e.ClientURL(), "nats://", "nats://wrong-url-token@", 1)}
	_, err = Connect(context.Background(), url, "test", nil)
	require.ErrorIs(t, err, nats.ErrAuthorization)
	require.NotContains(t, err.Error(), "wrong-url-token")

	// MQTT: the token is the password.
	out, err := mosquittoPub(t, e.MQTTAddr(), "x/y", "m", "-u", "any", "-P", "s3cret-token")
	require.NoError(t, err, out)
	out, err = mosquittoPub(t, e.MQTTAddr(), "x/y", "m")
	require.Error(t, err, out)
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	c := config.DefaultConfig()
	c.NATS.Servers = config.StringList{"nats://bob:hidden-pw@" + addr}
	c.NATS.Options.ConnectTimeout = 1
	start := time.Now()
	_, err = Connect(context.Background(), c, "test", nil)
	require.Error(t, err)
	require.ErrorIs(t, err, ErrUnreachable)
	require.Contains(t, err.Error(), "nats://bob:"+config.SecretMask+"@"+addr)
	require.NotContains(t, err.Error(), "hidden-pw")
	require.Less(t, time.Since(start), 5*time.Second)

	var opErr *net.OpError
	require.True(t, errors.As(err, &opErr) || errors.Is(err, nats.ErrNoServers), "cause is wrapped: %v", err)
}

func TestConnectBadURLHidesSecret(t *testing.T) {
	// Connect may get URLs that were never validated (a --server flag).
	c := config.DefaultConfig()
	c.NATS.Servers = config.StringList{"nats://bob:bad-url-secret@127.0.0.1:notaport"}
	_, err := Connect(context.Background(), c, "test", nil)
	require.ErrorIs(t, err, ErrUnreachable)
	require.NotContains(t, err.Error(), "bad-url-secret")
	var urlErr interface{ Timeout() bool }
	require.True(t, errors.As(err, &urlErr), "the cause is still reachable: %v", err)
}

func TestConnectCancelled(t *testing.T) {
	// A listener that accepts and never answers: the client waits for
	// INFO until its timeout, unless the context ends first.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	c := config.DefaultConfig()
	c.NATS.Servers = config.StringList{"nats://" + l.Addr().String()}
	c.NATS.Options.ConnectTimeout = 5
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Connect(ctx, c, "test", nil)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 3*time.Second)
}

func TestEmbeddedLogsToSlog(t *testing.T) {
	var buf syncBuffer
	log := newTestLogger(&buf)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	c := embeddedConfig(t, false)
	c.NATS.Embedded.Listen = l.Addr().String()
	_, err = StartEmbedded(c, log)
	require.Error(t, err)
	require.Contains(t, buf.String(), "nats-server")
	require.Contains(t, buf.String(), strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
}

func TestEmbeddedStoreLocked(t *testing.T) {
	c := embeddedConfig(t, false)
	e := startEmbedded(t, c)
	_, err := StartEmbedded(c, nil)
	require.ErrorContains(t, err, "in use by another worker (pid "+strconv.Itoa(os.Getpid())+")")
	e.Shutdown()
	// Shutdown gives the store up.
	startEmbedded(t, c)
}

// nats.embedded.config_file: what the nats-server file sets wins (its name,
// port and limits); what it leaves unset comes from the worker's settings;
// JetStream is on. A file nats-server cannot read is a settings error.
func TestEmbeddedConfigFile(t *testing.T) {
	c := embeddedConfig(t, false)
	file := filepath.Join(t.TempDir(), "nats.conf")
	require.NoError(t, os.WriteFile(file, []byte("server_name: node-a\nlisten: \"127.0.0.1:-1\"\nmax_payload: 2MB\n"), 0o600))
	c.NATS.Embedded.ConfigFile = file
	c.NATS.Embedded.Listen = "127.0.0.1:1" // the file's listen wins
	e := startEmbedded(t, c)
	require.Equal(t, "node-a", e.Server().Name())
	require.NotEqual(t, "nats://127.0.0.1:1", e.ClientURL())
	nc := connect(t, clientConfig(c, e))
	require.Equal(t, int64(2<<20), nc.MaxPayload())
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = Provision(context.Background(), js, ProvisionConfig{Names: Names{Prefix: "ansible", Group: "g"}}, slog.New(slog.DiscardHandler))
	require.NoError(t, err, "JetStream is on, with the worker's store_dir")
	require.DirExists(t, filepath.Join(c.NATS.Embedded.StoreDir, "jetstream"))

	require.NoError(t, os.WriteFile(file, []byte("cluster { name: \n"), 0o600))
	err = CheckEmbedded(c)
	require.ErrorIs(t, err, ErrSettings)
	require.ErrorContains(t, err, "nats.embedded.config_file")
}

// The cluster example's nats-server files are valid ones of a three-node
// cluster, and its worker configurations load (the embedded one with
// node-a.conf where the host would have it).
func TestClusterExamples(t *testing.T) {
	for _, n := range []string{"a", "b", "c"} {
		opts, err := server.ProcessConfigFile("../examples/cluster/node-" + n + ".conf")
		require.NoError(t, err, n)
		require.Equal(t, "node-"+n, opts.ServerName)
		require.Equal(t, "ansible", opts.Cluster.Name)
		require.Len(t, opts.Routes, 3)
		require.Equal(t, "/var/lib/nats/node-"+n, opts.StoreDir)
	}
	c, err := config.LoadConfig("../examples/cluster/config.yaml", noEnv)
	require.NoError(t, err)
	require.Equal(t, 3, c.NATS.Replicas)
	require.Len(t, c.NATS.Servers, 3)

	b, err := os.ReadFile("../examples/cluster/config.embedded.yaml")
	require.NoError(t, err)
	conf, err := filepath.Abs("../examples/cluster/node-a.conf")
	require.NoError(t, err)
	local := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(local, []byte(strings.Replace(string(b), "/etc/ansible-worker/node-a.conf", conf, 1)), 0o600))
	c, err = config.LoadConfig(local, noEnv)
	require.NoError(t, err)
	require.NoError(t, CheckEmbedded(c))
}

// noEnv is an environment without any variable.
func noEnv(string) (string, bool) { return "", false }
