package jsbridge

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// serverAt starts a nats-server on port (-1: any) with JetStream (stored
// in store) or without it.
func serverAt(t *testing.T, port int, store string, withJS bool) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: withJS, StoreDir: store,
		NoLog: true, NoSigs: true})
	require.NoError(t, err)
	go s.Start()
	require.True(t, s.ReadyForConnections(10*time.Second), "server not ready")
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// A status change made while JetStream does not answer is tried again
// until it does, so a task's final status outlives a failover. Here the
// server comes back without JetStream for a while: requests meet no
// responders, as they do in a cluster while a bucket has no leader.
func TestTransitionWaitsForJetStream(t *testing.T) {
	store := t.TempDir()
	s := serverAt(t, -1, store, true)
	port := s.Addr().(*net.TCPAddr).Port
	nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := Provision(ctx, js, ProvisionConfig{Names: Names{Prefix: "ansible", Group: "g"}}, newTestLogger(&syncBuffer{}))
	require.NoError(t, err)
	logs := &syncBuffer{}
	st := NewStatusStore(a, newTestLogger(logs))
	running := schemas.TaskStatus{TaskID: "t1", Group: "g", State: schemas.StateRunning, Output: map[string]any{}}
	_, changed, err := st.Transition(ctx, "g", "t1", func(*schemas.TaskStatus) (*schemas.TaskStatus, bool) { return &running, true })
	require.NoError(t, err)
	require.True(t, changed)

	s.Shutdown()
	s.WaitForShutdown()
	plain := serverAt(t, port, t.TempDir(), false)
	require.Eventually(t, nc.IsConnected, 10*time.Second, 10*time.Millisecond)
	done := make(chan error, 1)
	go func() {
		final := running
		final.State = schemas.StateSuccess
		_, changed, err := st.Transition(ctx, "g", "t1", func(cur *schemas.TaskStatus) (*schemas.TaskStatus, bool) {
			return &final, cur != nil && !cur.State.Final()
		})
		if err == nil && !changed {
			err = context.Canceled // not expected: reported below
		}
		done <- err
	}()
	require.Eventually(t, func() bool {
		return len(done) > 0 || strings.Contains(logs.String(), "status change failed, retrying")
	}, 10*time.Second, 10*time.Millisecond, "no failed try while JetStream was away")
	if len(done) > 0 {
		require.NoError(t, <-done, "gave up while JetStream was away")
		t.Fatal("changed while JetStream was away")
	}
	plain.Shutdown()
	plain.WaitForShutdown()
	serverAt(t, port, store, true)

	select {
	case err := <-done:
		require.NoError(t, err, "the final status is stored once JetStream answers")
	case <-ctx.Done():
		t.Fatal("the status change did not finish")
	}
	got, err := st.Get(ctx, "g", "t1")
	require.NoError(t, err)
	require.Equal(t, schemas.StateSuccess, got.State)
}
