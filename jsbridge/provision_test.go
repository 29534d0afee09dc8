package jsbridge

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// While a node of the cluster is offline (or just up and not yet known to
// the meta leader) a replicated asset cannot be placed: provisioning waits
// for it. Placement refused for a reason that stays (tags) is final.
func TestTransientPlacement(t *testing.T) {
	placement := func(why string) error {
		return &jetstream.APIError{Code: 400, ErrorCode: errCodeNoSuitablePeers, Description: "no suitable peers for placement" + why}
	}
	require.True(t, transient(placement(", peer offline")))
	require.True(t, transient(placement(", peer offline, insufficient storage")))
	require.False(t, transient(placement(", exclude tag set")))
}

// Several workers of one group starting at the same moment on an empty
// server all bind successfully and end up with one set of assets.
func TestProvisionConcurrently(t *testing.T) {
	t.Parallel()
	c := embeddedConfig(t, false)
	e := startEmbedded(t, c)
	cc := clientConfig(c, e)
	names := Names{Prefix: "ansible", Group: "production"}

	const workers = 6
	var wg sync.WaitGroup
	errs := make([]error, workers)
	start := make(chan struct{})
	for i := range workers {
		nc := connect(t, cc)
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, errs[i] = Bind(ctx, js, ProvisionConfig{Names: names}, slog.New(slog.DiscardHandler))
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "worker %d", i)
	}

	js, err := jetstream.New(connect(t, cc))
	require.NoError(t, err)
	ctx := context.Background()
	tasks, err := js.Stream(ctx, TasksStream)
	require.NoError(t, err)
	cfg := tasks.CachedInfo().Config
	require.Equal(t, jetstream.WorkQueuePolicy, cfg.Retention)
	require.Equal(t, []string{"ansible.*.tasks"}, cfg.Subjects)
	require.Equal(t, jetstream.FileStorage, cfg.Storage)

	cons, err := tasks.Consumer(ctx, "ansible-worker-production")
	require.NoError(t, err)
	ci := cons.CachedInfo().Config
	require.Equal(t, "ansible.production.tasks", ci.FilterSubject)
	require.Equal(t, jetstream.AckExplicitPolicy, ci.AckPolicy)
	require.Equal(t, DefaultAckWait, ci.AckWait)
	names2 := tasks.ListConsumers(ctx)
	n := 0
	for range names2.Info() {
		n++
	}
	require.Equal(t, 1, n, "one durable consumer shared by the group")

	events, err := js.Stream(ctx, EventsStream)
	require.NoError(t, err)
	require.Equal(t, []string{"pub.ansible.runner.>"}, events.CachedInfo().Config.Subjects)
	_, err = js.KeyValue(ctx, StatusBucket)
	require.NoError(t, err)

	// A second group shares the stream with its own consumer.
	_, err = Bind(ctx, js, ProvisionConfig{Names: Names{Prefix: "ansible", Group: "staging"}}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	_, err = tasks.Consumer(ctx, "ansible-worker-staging")
	require.NoError(t, err)
}

// The Outbox delivers every message, in order, even when added faster than
// the server stores them.
func TestOutboxKeepsOrder(t *testing.T) {
	t.Parallel()
	js, _ := provisioned(t, ProvisionConfig{Names: Names{Prefix: "ansible", Group: "g"}})
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)

	pub := NewPublisher(js, map[string]string{"producer": "test"}, log)
	ob := pub.NewOutbox(ctx)
	subj := EventSubject("g", "order")
	for i := range 500 {
		ob.Add(subj, "order-"+itoa(i), []byte(itoa(i)))
	}
	require.NoError(t, ob.Close(ctx))

	cons, err := js.OrderedConsumer(ctx, EventsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
	require.NoError(t, err)
	for i := range 500 {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		require.NoError(t, err)
		require.Equal(t, itoa(i), string(m.Data()))
		require.Equal(t, "test", m.Headers().Get("producer"))
		require.Equal(t, "order-"+itoa(i), m.Headers().Get("Nats-Msg-Id"))
	}
	// Publishing the same id again is stored once.
	require.NoError(t, pub.Publish(ctx, subj, "order-0", []byte("again")))
	st, err := js.Stream(ctx, EventsStream)
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(500), info.State.Msgs)
}

func itoa(i int) string { return strconv.Itoa(i) }

// provisioned starts an embedded server and provisions pc on it.
func provisioned(t *testing.T, pc ProvisionConfig) (jetstream.JetStream, *Assets) {
	t.Helper()
	c := embeddedConfig(t, false)
	e := startEmbedded(t, c)
	js, err := jetstream.New(connect(t, clientConfig(c, e)))
	require.NoError(t, err)
	a, err := Provision(context.Background(), js, pc, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	return js, a
}

// nats.status_ttl and nats.events_max_age reach the buckets and the events
// stream, and a later provision with other values updates them.
func TestProvisionRetention(t *testing.T) {
	t.Parallel()
	pc := ProvisionConfig{Names: Names{Prefix: "ansible", Group: "g"}, StatusTTL: time.Second, EventsMaxAge: time.Hour}
	js, a := provisioned(t, pc)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)

	st, err := a.Status.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, time.Second, st.TTL())
	claims, err := a.Claims.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, time.Second, claims.TTL())
	require.Equal(t, time.Hour, a.Events.CachedInfo().Config.MaxAge)

	store := NewStatusStore(a, log)
	require.NoError(t, store.Put(ctx, &schemas.TaskStatus{TaskID: "short", Group: "g", State: schemas.StateSuccess}))
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := store.Get(ctx, "g", "short")
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			break
		}
		require.True(t, time.Now().Before(deadline), "status still there after its TTL")
		time.Sleep(100 * time.Millisecond)
	}

	a, err = Provision(ctx, js, ProvisionConfig{Names: pc.Names}, log)
	require.NoError(t, err)
	st, err = a.Status.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, time.Duration(0), st.TTL(), "0 keeps statuses for ever")
	require.Equal(t, time.Duration(0), a.Events.CachedInfo().Config.MaxAge)
}

// A message the server refuses for good inside a window (larger than its
// max_payload) is skipped; the ones around it are stored, in order.
func TestOutboxSkipsARefusedMessage(t *testing.T) {
	t.Parallel()
	js, _ := provisioned(t, ProvisionConfig{Names: Names{Prefix: "ansible", Group: "g"}})
	ctx := context.Background()
	ob := NewPublisher(js, nil, slog.New(slog.DiscardHandler)).NewOutbox(ctx)
	subj := EventSubject("g", "refused")
	for i := range 100 {
		data := []byte(itoa(i))
		if i == 30 {
			data = make([]byte, 2<<20)
		}
		ob.Add(subj, "refused-"+itoa(i), data)
	}
	require.Error(t, ob.Close(ctx), "the refusal is reported")
	cons, err := js.OrderedConsumer(ctx, EventsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
	require.NoError(t, err)
	for i := range 100 {
		if i == 30 {
			continue
		}
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		require.NoError(t, err)
		require.Equal(t, itoa(i), string(m.Data()))
	}
}

// While nothing can be stored, Add blocks once maxBytes wait instead of
// queueing without bound; once the stream is there, every message goes
// out, in order, and Add returns.
func TestOutboxBoundsWhatWaits(t *testing.T) {
	t.Parallel()
	js, _ := provisioned(t, ProvisionConfig{Names: Names{Prefix: "ansible", Group: "g"}})
	ctx := context.Background()
	ob := NewPublisher(js, nil, slog.New(slog.DiscardHandler)).NewOutbox(ctx)
	ob.maxBytes = 1000
	added := make(chan int, 1)
	go func() {
		n := 0
		for i := range 30 {
			ob.Add("later.x", "later-"+itoa(i), make([]byte, 100))
			n++
		}
		added <- n
	}()
	checkUntil(t, 10*time.Second, func() bool {
		ob.mu.Lock()
		defer ob.mu.Unlock()
		return ob.bytes >= 900
	})
	select {
	case n := <-added:
		t.Fatalf("Add did not block: %d added", n)
	default:
	}
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "LATER", Subjects: []string{"later.>"}})
	require.NoError(t, err)
	select {
	case n := <-added:
		require.Equal(t, 30, n)
	case <-time.After(30 * time.Second):
		t.Fatal("Add stayed blocked after the stream appeared")
	}
	require.NoError(t, ob.Close(ctx))
	st, err := js.Stream(ctx, "LATER")
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(30), info.State.Msgs)
}

// checkUntil polls cond every 10 ms until it holds or total passes.
func checkUntil(t *testing.T, total time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(total)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(10 * time.Millisecond) // polled until the deadline
	}
}
