package jsbridge

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/config"
)

// requireSettingsError checks that err blames our settings, not the
// network: the CLI exits 2 on it, not 5.
func requireSettingsError(t *testing.T, err error) {
	t.Helper()
	require.ErrorIs(t, err, ErrSettings)
	require.NotErrorIs(t, err, ErrUnreachable)
}

// Only a server that cannot be reached is ErrUnreachable; unreadable or
// refused TLS, credentials and nkey settings are ErrSettings.
func TestConnectErrorKinds(t *testing.T) {
	s := runServer(t, &server.Options{Username: "u", Password: "p"})
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage")
	require.NoError(t, os.WriteFile(garbage, []byte("not a credential\n"), 0o600))
	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	seed, err := kp.Seed()
	require.NoError(t, err)
	pki := newTestPKI(t)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "nats://u:p@" + l.Addr().String()
	require.NoError(t, l.Close())
	_, err = Connect(context.Background(), serverConfig(closed), "test", nil)
	require.ErrorIs(t, err, ErrUnreachable)
	require.NotErrorIs(t, err, ErrSettings)

	cases := map[string]func(c *config.Config){
		"wrong password": func(c *config.Config) { c.NATS.Username, c.NATS.Password = "u", "wrong" },
		"garbage creds":  func(c *config.Config) { c.NATS.UserCredentials = garbage },
		"missing creds":  func(c *config.Config) { c.NATS.UserCredentials = filepath.Join(dir, "missing.creds") },
		"unknown nkey":   func(c *config.Config) { c.NATS.NkeysSeed = string(seed) },
		"garbage CA":     func(c *config.Config) { c.NATS.TLS.CAFile = garbage },
		"bad key pair":   func(c *config.Config) { c.NATS.TLS.CertFile, c.NATS.TLS.KeyFile = pki.caFile, garbage },
		"TLS to a plain server": func(c *config.Config) {
			c.NATS.Username, c.NATS.Password = "u", "p"
			c.NATS.TLS.CAFile = pki.caFile
		},
		"TLS first to a plain server": func(c *config.Config) {
			c.NATS.Username, c.NATS.Password = "u", "p"
			c.NATS.TLS = config.NATSTLSConfig{CAFile: pki.caFile, HandshakeFirst: true}
		},
	}
	for name, set := range cases {
		c := serverConfig(s.ClientURL())
		set(c)
		_, err := Connect(context.Background(), c, "test", nil)
		require.Error(t, err, name)
		require.ErrorIs(t, err, ErrSettings, name)
		require.NotErrorIs(t, err, ErrUnreachable, name)
	}
	require.NotContains(t, func() string {
		c := serverConfig(s.ClientURL())
		c.NATS.UserCredentials = garbage
		_, err := Connect(context.Background(), c, "test", nil)
		return err.Error()
	}(), "not a credential", "a credentials file's content is never shown")
}

// Drain returns only once the connection is closed, after the messages a
// subscription had already received are handled.
func TestDrainWaitsForPendingMessages(t *testing.T) {
	s := runServer(t, &server.Options{})
	nc, err := nats.Connect(s.ClientURL())
	require.NoError(t, err)
	defer nc.Close()
	release := make(chan struct{})
	var handled atomic.Int32
	sub, err := nc.Subscribe("work", func(*nats.Msg) {
		<-release
		handled.Add(1)
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush(), "the server has the subscription")

	pub, err := nats.Connect(s.ClientURL())
	require.NoError(t, err)
	defer pub.Close()
	const n = 20
	for range n {
		require.NoError(t, pub.Publish("work", []byte("x")))
	}
	require.NoError(t, pub.Flush())
	require.Eventually(t, func() bool {
		msgs, _, _ := sub.Pending()
		return msgs >= n // the one in the blocked handler counts until it returns
	}, 5*time.Second, time.Millisecond)

	done := make(chan error, 1)
	go func() { done <- Drain(context.Background(), nc) }()
	require.Eventually(t, func() bool { return nc.IsDraining() || nc.IsClosed() }, 5*time.Second, time.Millisecond)
	close(release)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Drain did not return")
	}
	require.True(t, nc.IsClosed())
	require.EqualValues(t, n, handled.Load(), "every received message was handled before the close")
}

// A drain that outlives its context is cut short: the connection is closed
// and the context's error returned.
func TestDrainBoundedByContext(t *testing.T) {
	s := runServer(t, &server.Options{})
	nc, err := nats.Connect(s.ClientURL())
	require.NoError(t, err)
	defer nc.Close()
	block := make(chan struct{})
	defer close(block)
	_, err = nc.Subscribe("stuck", func(*nats.Msg) { <-block })
	require.NoError(t, err)
	require.NoError(t, nc.Publish("stuck", nil))
	require.NoError(t, nc.Flush())

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = Drain(ctx, nc)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.True(t, nc.IsClosed())
	require.NoError(t, Drain(context.Background(), nc), "draining a closed connection is a no-op")
}
