package jsbridge

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// intakeEnv is a provisioned server with a connection and the queue of group
// g.
type intakeEnv struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	names Names
	q     *Queue
	heard chan Submission
}

func newIntakeEnv(t *testing.T) *intakeEnv {
	t.Helper()
	c := embeddedConfig(t, false)
	nc := connect(t, clientConfig(c, startEmbedded(t, c)))
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	names := Names{Prefix: "ansible", Group: "g"}
	a, err := Provision(context.Background(), js, ProvisionConfig{Names: names}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	env := &intakeEnv{nc: nc, js: js, names: names, q: NewQueue(a, names, nc), heard: make(chan Submission, 10)}
	sub, err := SubscribeIntake(nc, names, func(s Submission) { env.heard <- s })
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, nc.Flush())
	return env
}

// submit stores data on subject and returns the submission intake hears.
func (e *intakeEnv) submit(t *testing.T, msg *nats.Msg) (Submission, *jetstream.PubAck) {
	t.Helper()
	ack, err := e.js.PublishMsg(context.Background(), msg)
	require.NoError(t, err)
	select {
	case s := <-e.heard:
		return s, ack
	case <-time.After(5 * time.Second):
		t.Fatal("intake heard nothing")
		return Submission{}, nil
	}
}

// Only what the tasks stream stored for the group passes Authentic: a made-up
// sequence (existing, of another group, or not reached yet) or other data
// fails with ErrNotStored.
func TestSecIntakeAuthentic(t *testing.T) {
	t.Parallel()
	e := newIntakeEnv(t)
	ctx := context.Background()
	data := []byte(`{"task_id":"real","playbook":"p.yml","inventory":"h,"}`)
	heard, ack := e.submit(t, &nats.Msg{Subject: e.names.TaskSubject(), Data: data})
	require.Equal(t, ack.Sequence, heard.Seq)

	got, err := e.q.Authentic(ctx, heard)
	require.NoError(t, err)
	require.Equal(t, data, got.Data)
	require.Equal(t, ack.Sequence, got.Seq)
	require.WithinDuration(t, time.Now(), got.Stored, time.Minute)

	other, err := e.js.Publish(ctx, "ansible.other.tasks", data)
	require.NoError(t, err)
	for name, forged := range map[string]Submission{
		"other data":    {Seq: heard.Seq, Data: []byte(`{"task_id":"victim","playbook":"p.yml","inventory":"h,"}`)},
		"other group":   {Seq: other.Sequence, Data: data},
		"next sequence": {Seq: other.Sequence + 1, Data: data},
		"far ahead":     {Seq: 1 << 40, Data: data},
		"zero":          {Seq: 0, Data: data},
	} {
		_, err := e.q.Authentic(ctx, forged)
		require.ErrorIs(t, err, ErrNotStored, name)
	}
}

// A submission that carries a Nats-Sequence header of its own is still heard
// with the sequence the stream gave it.
func TestSecIntakeOwnSequenceHeader(t *testing.T) {
	t.Parallel()
	e := newIntakeEnv(t)
	msg := &nats.Msg{Subject: e.names.TaskSubject(), Header: nats.Header{}, Data: []byte(`{}`)}
	msg.Header.Set("Nats-Sequence", "999")
	msg.Header.Set("Nats-Time-Stamp", "2001-01-01T00:00:00Z")
	heard, ack := e.submit(t, msg)
	require.Equal(t, ack.Sequence, heard.Seq)
	require.WithinDuration(t, time.Now(), heard.Stored, time.Minute)
	_, err := e.q.Authentic(context.Background(), heard)
	require.NoError(t, err)
}

// Remove takes a stored submission out of the queue, so it no longer counts
// as waiting; removing it again is not an error.
func TestSecIntakeRemove(t *testing.T) {
	t.Parallel()
	e := newIntakeEnv(t)
	ctx := context.Background()
	var seqs []uint64
	for i := range 3 {
		ack, err := e.js.Publish(ctx, e.names.TaskSubject(), []byte("junk "+strconv.Itoa(i)))
		require.NoError(t, err)
		seqs = append(seqs, ack.Sequence)
	}
	e.waitWaiting(t, 3)
	for _, seq := range seqs[:2] {
		require.NoError(t, e.q.Remove(ctx, seq))
	}
	require.NoError(t, e.q.Remove(ctx, seqs[0]), "already removed")
	e.waitWaiting(t, 1)
}

// waitWaiting waits until the queue counts n waiting tasks: the consumer
// learns of stream changes a moment later.
func (e *intakeEnv) waitWaiting(t *testing.T, n uint64) {
	t.Helper()
	require.Eventually(t, func() bool {
		w, err := e.q.Waiting(context.Background())
		return err == nil && w == n
	}, 5*time.Second, 20*time.Millisecond, "waiting tasks: want %d", n)
}

// A tasks stream created by an older version, without limits and with
// discard old, is updated in place: its tasks stay, the limits apply.
func TestSecStreamLimitsUpdateInPlace(t *testing.T) {
	t.Parallel()
	c := embeddedConfig(t, false)
	js, err := jetstream.New(connect(t, clientConfig(c, startEmbedded(t, c))))
	require.NoError(t, err)
	ctx := context.Background()
	names := Names{Prefix: "ansible", Group: "g"}
	old := tasksStreamConfig(ProvisionConfig{Names: names, Replicas: 1})
	old.MaxMsgSize, old.MaxBytes, old.MaxAge, old.Discard = 0, 0, 0, jetstream.DiscardOld
	_, err = js.CreateStream(ctx, old)
	require.NoError(t, err)
	_, err = js.Publish(ctx, "ansible.g.tasks", []byte(strings.Repeat("a", 2000)))
	require.NoError(t, err)

	pc := ProvisionConfig{Names: names, TasksMaxMsgSize: 1024, TasksMaxBytes: 8192, TasksMaxAge: time.Second}
	a, err := Provision(ctx, js, pc, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	cfg := a.Tasks.CachedInfo().Config
	require.Equal(t, int32(1024), cfg.MaxMsgSize)
	require.Equal(t, int64(8192), cfg.MaxBytes)
	require.Equal(t, time.Second, cfg.MaxAge)
	require.Equal(t, time.Second, cfg.Duplicates, "the duplicates window fits in the max age")
	require.Equal(t, jetstream.DiscardNew, cfg.Discard)
	require.Equal(t, jetstream.WorkQueuePolicy, cfg.Retention)

	_, err = js.Publish(ctx, "ansible.g.tasks", []byte(strings.Repeat("b", 2000)))
	require.ErrorIs(t, err, jetstream.ErrStreamMessageExceedsMaximum)
	require.Eventually(t, func() bool {
		info, err := a.Tasks.Info(ctx)
		return err == nil && info.State.Msgs == 0
	}, 10*time.Second, 100*time.Millisecond, "the task stored before the update ages out")
}

// A max bytes the server cannot reserve fails at once, saying which key to
// change.
func TestSecStreamMaxBytesTooLarge(t *testing.T) {
	t.Parallel()
	c := embeddedConfig(t, false)
	js, err := jetstream.New(connect(t, clientConfig(c, startEmbedded(t, c))))
	require.NoError(t, err)
	start := time.Now()
	_, err = Provision(context.Background(), js, ProvisionConfig{Names: Names{Prefix: "ansible", Group: "g"},
		TasksMaxBytes: 1 << 60}, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "insufficient storage")
	require.ErrorContains(t, err, "nats.tasks_max_bytes")
	require.Less(t, time.Since(start), 5*time.Second, "not retried")
}
