package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/jsbridge"
)

// fakePublisher records what reaches "MQTT"; it fails the first n publishes.
type fakePublisher struct {
	mu    sync.Mutex
	fails int
	got   []string
}

func (p *fakePublisher) Publish(_ context.Context, topic string, payload []byte, retain bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fails > 0 {
		p.fails--
		return errors.New("broker away")
	}
	if !retain {
		return errors.New("status must be retained")
	}
	p.got = append(p.got, topic+" "+string(payload))
	return nil
}

func (p *fakePublisher) messages() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.got...)
}

func startJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	require.NoError(t, err)
	go s.Start()
	require.True(t, s.ReadyForConnections(10*time.Second))
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	nc, err := nats.Connect(s.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return js
}

// Every change goes out in order, a failed publish is retried before any
// later change, another group's statuses stay out, and a deleted status
// clears its retained topic.
func TestStatusMirrorOrderRetryAndDelete(t *testing.T) {
	t.Parallel()
	js := startJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: jsbridge.StatusBucket, History: 10})
	require.NoError(t, err)
	pub := &fakePublisher{fails: 2}
	names := jsbridge.Names{Prefix: "ansible", Group: "g"}
	m := NewStatusMirror(js, names, pub, ListenerMirror(names), slog.New(slog.NewTextHandler(io.Discard, nil)))
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	// A new mirror starts from the latest status of each task: make the
	// changes once its consumer exists, so it sees every one.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := js.Consumer(ctx, "KV_"+jsbridge.StatusBucket, "ansible-worker-mqtt-status-g"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	for _, v := range []string{"queued", "running", "success"} {
		_, err := kv.Put(ctx, "g.t1", []byte(v))
		require.NoError(t, err)
	}
	_, err = kv.Put(ctx, "other.t9", []byte("queued"))
	require.NoError(t, err)
	require.NoError(t, kv.Delete(ctx, "g.t1"))

	want := []string{"ansible/g/tasks/t1/status queued", "ansible/g/tasks/t1/status running",
		"ansible/g/tasks/t1/status success", "ansible/g/tasks/t1/status "}
	deadline = time.Now().Add(20 * time.Second)
	for len(pub.messages()) < len(want) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	require.Equal(t, want, pub.messages())
	cancel()
	<-done
}

// A mirror consumer that exists with contradicting settings (another
// version's) is neither changed nor used: Run stops at once, naming the
// difference and how to remove the consumer.
func TestStatusMirrorRefusesAContradictingConsumer(t *testing.T) {
	t.Parallel()
	js := startJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: jsbridge.StatusBucket, History: 10})
	require.NoError(t, err)
	names := jsbridge.Names{Prefix: "ansible", Group: "g"}
	stream, durable := "KV_"+jsbridge.StatusBucket, ListenerMirror(names)
	_, err = js.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{Durable: durable, FilterSubject: "$KV.ansible_status.g.*",
		DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy, AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 5, MaxDeliver: -1})
	require.NoError(t, err)

	err = NewStatusMirror(js, names, &fakePublisher{}, durable, slog.New(slog.DiscardHandler)).Run(ctx)
	require.ErrorContains(t, err, "consumer ansible-worker-mqtt-status-g: max_ack_pending is 5 on the server, ansible-worker needs 1; "+
		`remove it with "nats consumer rm KV_ansible_status ansible-worker-mqtt-status-g"`)
	require.NoError(t, ctx.Err(), "not retried until the context ends")
	cons, err := js.Consumer(ctx, stream, durable)
	require.NoError(t, err)
	require.Equal(t, 5, cons.CachedInfo().Config.MaxAckPending, "never changed")
}
