package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/client"
	"github.com/ansible-worker/ansible-worker/config"
	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// newSystem starts a system for t and stops it at the end.
func newSystem(t *testing.T, withWorker bool) *system {
	t.Helper()
	sys, err := startSystem(withWorker)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sys.close()) })
	return sys
}

// connect connects a client to sys and closes it at the end.
func connect(t *testing.T, sys *system, opts ...client.Option) *client.Client {
	t.Helper()
	cl, err := client.Connect(context.Background(), sys.cfg, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

func quick(id string) schemas.TaskRequest {
	return schemas.TaskRequest{TaskID: id, Playbook: "quick.yml", Inventory: "inventory/hosts"}
}

// With no worker running, a submitted task is queued: its status says so,
// List and Watch show it, and its id cannot be used again.
func TestSubmitQueues(t *testing.T) {
	t.Parallel()
	sys := newSystem(t, false)
	cl := connect(t, sys)
	ctx := context.Background()

	rcpt, err := cl.Submit(ctx, quick("q-1"))
	require.NoError(t, err)
	require.Equal(t, client.Receipt{TaskID: "q-1", Group: "production", Subject: "ansible.production.tasks", Sequence: 1}, *rcpt)
	st, err := cl.Status(ctx, "q-1")
	require.NoError(t, err)
	require.Equal(t, schemas.StateQueued, st.State)
	require.Equal(t, "production", st.Group)

	_, err = cl.Submit(ctx, quick("q-1"))
	require.ErrorIs(t, err, client.ErrTaskExists)
	require.ErrorContains(t, err, "already exists in group production (state queued)")

	rcpt, err = cl.Submit(ctx, schemas.TaskRequest{Playbook: "quick.yml", Inventory: "inventory/hosts"})
	require.NoError(t, err)
	require.True(t, schemas.ValidID(rcpt.TaskID), "a random id: %q", rcpt.TaskID)
	require.EqualValues(t, 2, rcpt.Sequence)

	list, err := cl.List(ctx, client.Filter{})
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, "q-1", list[0].TaskID, "oldest first")
	list, err = cl.List(ctx, client.Filter{State: schemas.StateRunning})
	require.NoError(t, err)
	require.Empty(t, list)
}

// Bad requests and ids are refused before anything is sent; unknown tasks
// are ErrNotFound.
func TestInvalidAndNotFound(t *testing.T) {
	t.Parallel()
	sys := newSystem(t, false)
	cl := connect(t, sys)
	ctx := context.Background()

	_, err := cl.SubmitJSON(ctx, []byte(`{"task_id":"bad-1","playbook":"quick.yml","inventory":"inventory/hosts","verbosity":9}`))
	require.ErrorIs(t, err, client.ErrInvalid)
	require.ErrorContains(t, err, "verbosity")
	_, err = cl.Status(ctx, "bad-1")
	require.ErrorIs(t, err, client.ErrNotFound, "nothing was queued")
	require.ErrorContains(t, err, "no task bad-1 in group production")

	_, err = cl.Status(ctx, "not an id")
	require.ErrorIs(t, err, client.ErrInvalid)
	_, err = cl.Follow(ctx, "../x", false, func(jsbridge.Update) {})
	require.ErrorIs(t, err, client.ErrInvalid)
	_, err = cl.ForGroup("a.b")
	require.ErrorIs(t, err, client.ErrInvalid)
	_, err = client.Connect(ctx, sys.cfg, client.WithGroup("*"))
	require.ErrorIs(t, err, client.ErrInvalid)
}

// Watch gives every current status, then each new one, until its function
// returns an error or ctx ends.
func TestWatch(t *testing.T) {
	t.Parallel()
	sys := newSystem(t, false)
	cl := connect(t, sys)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := cl.Submit(ctx, quick("w-1"))
	require.NoError(t, err)

	seen := make(chan client.StatusUpdate, 10)
	stop := errors.New("seen enough")
	done := make(chan error, 1)
	go func() {
		done <- cl.Watch(ctx, func(u client.StatusUpdate) error {
			seen <- u
			if u.TaskID == "w-2" {
				return stop
			}
			return nil
		})
	}()
	u := <-seen
	require.Equal(t, "w-1", u.TaskID)
	require.Equal(t, schemas.StateQueued, u.Status.State)
	require.JSONEq(t, string(u.Raw), string(mustJSON(t, u.Status)))
	_, err = cl.Submit(ctx, quick("w-2"))
	require.NoError(t, err)
	require.Equal(t, "w-2", (<-seen).TaskID)
	require.ErrorIs(t, <-done, stop)

	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	require.ErrorIs(t, cl.Watch(short, func(client.StatusUpdate) error { return nil }), context.DeadlineExceeded)
}

// Streams and buckets that are missing are created the way a worker
// creates them, so tasks can wait for the first worker.
func TestProvisionsWhatIsMissing(t *testing.T) {
	t.Parallel()
	sys := newSystem(t, false)
	cl := connect(t, sys, client.WithGroup("other"))
	ctx := context.Background()

	// The tasks stream takes every group's subject; remove it, and the
	// submission creates it again.
	js, err := jetstream.New(sys.nc)
	require.NoError(t, err)
	require.NoError(t, js.DeleteStream(ctx, jsbridge.TasksStream))
	rcpt, err := cl.Submit(ctx, quick("lost-1"))
	require.NoError(t, err)
	require.Equal(t, uint64(1), rcpt.Sequence)
	tasks, err := js.Stream(ctx, jsbridge.TasksStream)
	require.NoError(t, err)
	cfg := tasks.CachedInfo().Config
	require.Equal(t, jetstream.WorkQueuePolicy, cfg.Retention)
	require.NotNil(t, cfg.RePublish, "workers hear of new tasks")

	require.NoError(t, js.DeleteKeyValue(ctx, jsbridge.StatusBucket))
	fresh := connect(t, sys)
	_, err = fresh.Submit(ctx, quick("lost-2"))
	require.NoError(t, err)
	list, err := fresh.List(ctx, client.Filter{})
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, "lost-2", list[0].TaskID)
}

// Connect tells an unreachable server from bad settings.
func TestConnectErrors(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	cfg := config.DefaultConfig()
	cfg.NATS.Servers = config.StringList{"nats://" + addr}
	_, err = client.Connect(context.Background(), cfg)
	require.ErrorIs(t, err, jsbridge.ErrUnreachable)

	cfg.NATS.TLS.CAFile = "/nonexistent/ca.pem"
	_, err = client.Connect(context.Background(), cfg)
	require.ErrorIs(t, err, jsbridge.ErrSettings)
	require.NotErrorIs(t, err, jsbridge.ErrUnreachable)
}

// A client on the caller's connection leaves it open; Connect's own is
// drained and closed by Close.
func TestNewAndClose(t *testing.T) {
	t.Parallel()
	sys := newSystem(t, false)
	nc, err := nats.Connect(sys.cfg.NATS.Servers[0])
	require.NoError(t, err)
	defer nc.Close()
	cl, err := client.New(nc, jsbridge.Names{Prefix: "ansible", Group: "production"})
	require.NoError(t, err)
	_, err = cl.Submit(context.Background(), quick("n-1"))
	require.NoError(t, err)
	require.NoError(t, cl.Close())
	require.False(t, nc.IsClosed())
	other, err := cl.ForGroup("staging")
	require.NoError(t, err)
	require.Equal(t, "ansible.staging.tasks", other.Names().TaskSubject())

	own := connect(t, sys)
	require.NoError(t, own.Close())
	require.True(t, own.Conn().IsClosed())
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
