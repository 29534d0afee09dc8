package jsbridge

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// emptyServer starts an embedded server with nothing provisioned.
func emptyServer(t *testing.T) jetstream.JetStream {
	t.Helper()
	c := embeddedConfig(t, false)
	e := startEmbedded(t, c)
	js, err := jetstream.New(connect(t, clientConfig(c, e)))
	require.NoError(t, err)
	return js
}

func groupConfig(group string) ProvisionConfig {
	return ProvisionConfig{Names: Names{Prefix: "ansible", Group: group}, Jobs: true}
}

func requireLines(t *testing.T, rep Report, want ...string) {
	t.Helper()
	require.Equal(t, want, rep.Lines())
}

func streamConfig(t *testing.T, js jetstream.JetStream, name string) jetstream.StreamConfig {
	t.Helper()
	st, err := js.Stream(context.Background(), name)
	require.NoError(t, err)
	return st.CachedInfo().Config
}

// The provision command's report: what a dry run would do changes
// nothing; then created, unchanged, and each changed setting from → to.
func TestApplyReport(t *testing.T) {
	t.Parallel()
	js := emptyServer(t)
	ctx := testCtx(t)
	pc := groupConfig("production")

	rep, err := Apply(ctx, js, pc, true, nil)
	require.NoError(t, err)
	requireLines(t, rep, "would create stream ANSIBLE_TASKS (replicas 1)", "would create stream ANSIBLE_EVENTS (replicas 1)",
		"would create stream ANSIBLE_RESPONSES (replicas 1)", "would create bucket ansible_status (replicas 1)",
		"would create bucket ansible_claims (replicas 1)", "would create object store ansible_jobs (replicas 1)",
		"would create consumer ansible-worker-production (replicas 1)")
	_, err = js.Stream(ctx, TasksStream)
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound, "a dry run creates nothing")

	rep, err = Apply(ctx, js, pc, false, nil)
	require.NoError(t, err)
	require.Equal(t, "created stream ANSIBLE_TASKS (replicas 1)", rep.Lines()[0])
	require.Equal(t, "created consumer ansible-worker-production (replicas 1)", rep.Lines()[6])
	rep, err = Apply(ctx, js, pc, false, nil)
	require.NoError(t, err)
	requireLines(t, rep, "unchanged stream ANSIBLE_TASKS", "unchanged stream ANSIBLE_EVENTS", "unchanged stream ANSIBLE_RESPONSES",
		"unchanged bucket ansible_status", "unchanged bucket ansible_claims", "unchanged object store ansible_jobs",
		"unchanged consumer ansible-worker-production")

	pc.EventsMaxAge, pc.StatusTTL, pc.AckWait, pc.TasksMaxBytes = 168*time.Hour, time.Minute, 5*time.Second, 1<<20
	changed := []string{
		"update stream ANSIBLE_TASKS: max_bytes unlimited → 1048576",
		"update stream ANSIBLE_EVENTS: max_age 0s → 168h0m0s",
		"update stream ANSIBLE_RESPONSES: max_age 0s → 168h0m0s",
		"update bucket ansible_status: ttl 0s → 1m0s",
		"update bucket ansible_claims: ttl 0s → 1m0s",
		"unchanged object store ansible_jobs",
		"update consumer ansible-worker-production: ack_wait 30s → 5s",
	}
	rep, err = Apply(ctx, js, pc, true, nil)
	require.NoError(t, err)
	requireLines(t, rep, prefixed("would ", changed)...)
	require.Equal(t, time.Duration(0), streamConfig(t, js, EventsStream).MaxAge, "a dry run changes nothing")

	rep, err = Apply(ctx, js, pc, false, nil)
	require.NoError(t, err)
	requireLines(t, rep, prefixed("", changed)...)
	require.Equal(t, 168*time.Hour, streamConfig(t, js, EventsStream).MaxAge)
	require.Equal(t, time.Minute, streamConfig(t, js, "KV_"+StatusBucket).MaxAge)
	require.Equal(t, int64(1<<20), streamConfig(t, js, TasksStream).MaxBytes)
	cons, err := js.Consumer(ctx, TasksStream, "ansible-worker-production")
	require.NoError(t, err)
	require.Equal(t, 5*time.Second, cons.CachedInfo().Config.AckWait)
	_, err = Bind(ctx, js, pc, nil)
	require.NoError(t, err, "a worker with the provisioned settings starts")
}

// prefixed turns "update …" lines into "would update …" or "updated …".
func prefixed(pre string, lines []string) []string {
	out := slices.Clone(lines)
	for i, l := range out {
		if rest, ok := strings.CutPrefix(l, "update "); ok {
			out[i] = "updated " + rest
			if pre != "" {
				out[i] = pre + l
			}
		}
	}
	return out
}

// A worker creates what is missing and never changes what exists: each
// contradiction is named, with the fix; a new group's consumer on the
// shared streams is normal.
func TestBindRefusesContradictions(t *testing.T) {
	t.Parallel()
	js := emptyServer(t)
	ctx := testCtx(t)
	pc := groupConfig("production")
	pc.EventsMaxAge = time.Hour
	a, err := Bind(ctx, js, pc, nil)
	require.NoError(t, err, "the first worker on an empty server creates everything")
	require.NotNil(t, a.Consumer)
	require.NotNil(t, a.Jobs)
	_, err = Bind(ctx, js, groupConfig("staging"), nil)
	require.Error(t, err, "staging's events_max_age differs")
	staging := groupConfig("staging")
	staging.EventsMaxAge = time.Hour
	_, err = Bind(ctx, js, staging, nil)
	require.NoError(t, err, "another group's consumer is created on the shared streams")

	other := pc
	other.EventsMaxAge, other.Replicas, other.AckWait, other.JobsMaxAge = 2*time.Hour, 1, 10*time.Second, time.Hour
	_, err = Bind(ctx, js, other, nil)
	var ce *ConflictError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, `the JetStream assets on the NATS server contradict this configuration:
  stream ANSIBLE_EVENTS: max_age is 1h0m0s on the server, nats.events_max_age says 2h0m0s
  stream ANSIBLE_RESPONSES: max_age is 1h0m0s on the server, nats.events_max_age says 2h0m0s
  object store ansible_jobs: ttl is 0s on the server, nats.jobs_max_age says 1h0m0s
  consumer ansible-worker-production: ack_wait is 30s on the server, worker.ack_wait says 10s
run "ansible-worker provision -c w.yaml" to change them, for every worker that shares them`, ce.Explain("ansible-worker provision -c w.yaml"))
	require.Equal(t, time.Hour, streamConfig(t, js, EventsStream).MaxAge, "a worker changes nothing")

	one := pc
	one.AckWait = time.Minute
	_, err = Bind(ctx, js, one, nil)
	require.ErrorAs(t, err, &ce)
	require.Equal(t, `consumer ansible-worker-production: ack_wait is 30s on the server, worker.ack_wait says 1m0s; `+
		`run "ansible-worker provision -c w.yaml" to change it`, ce.Explain("ansible-worker provision -c w.yaml"))
}

// What a worker ignores and what it needs: a consumer's max_ack_pending
// and the subjects another prefix added are fine; a tasks stream without
// this worker's prefix is not, and provision adds it, keeping the others.
func TestBindLooseAndSubjects(t *testing.T) {
	t.Parallel()
	js := emptyServer(t)
	ctx := testCtx(t)
	pc := groupConfig("production")
	_, err := Bind(ctx, js, pc, nil)
	require.NoError(t, err)
	cons, err := js.Consumer(ctx, TasksStream, pc.Consumer())
	require.NoError(t, err)
	cc := cons.CachedInfo().Config
	cc.MaxAckPending = 50
	_, err = js.UpdateConsumer(ctx, TasksStream, cc)
	require.NoError(t, err)
	_, err = Bind(ctx, js, pc, nil)
	require.NoError(t, err, "max_ack_pending is no contradiction")

	other := ProvisionConfig{Names: Names{Prefix: "other", Group: "ops"}}
	_, err = Bind(ctx, js, other, nil)
	var ce *ConflictError
	require.ErrorAs(t, err, &ce)
	require.Contains(t, ce.Error(), "stream ANSIBLE_TASKS: subjects is [ansible.*.tasks] on the server, worker.topic_prefix says [ansible.*.tasks other.*.tasks]")
	require.Contains(t, ce.Error(), "stream ANSIBLE_RESPONSES: subjects is [ansible.*.responses] on the server, worker.topic_prefix says [ansible.*.responses other.*.responses]")

	rep, err := Apply(ctx, js, other, false, nil)
	require.NoError(t, err)
	require.Contains(t, rep.Lines(), "updated stream ANSIBLE_TASKS: subjects [ansible.*.tasks] → [ansible.*.tasks other.*.tasks]")
	require.Equal(t, []string{"ansible.*.tasks", "other.*.tasks"}, streamConfig(t, js, TasksStream).Subjects)
	_, err = Bind(ctx, js, other, nil)
	require.NoError(t, err)
	_, err = Bind(ctx, js, pc, nil)
	require.NoError(t, err, "the subjects of another prefix are fine")
	rep, err = Apply(ctx, js, pc, false, nil)
	require.NoError(t, err)
	require.Contains(t, rep.Lines(), "unchanged stream ANSIBLE_TASKS", "provision keeps the other prefix's subjects")
	require.Contains(t, rep.Lines(), "updated consumer ansible-worker-production: max_ack_pending 50 → 10000")
}

// An older version's tasks stream, without the echo the intake relies on
// and dropping old tasks when full, is a contradiction provision fixes in
// place, tasks kept.
func TestProvisionFixesAnOlderStream(t *testing.T) {
	t.Parallel()
	js := emptyServer(t)
	ctx := testCtx(t)
	pc := groupConfig("production")
	old := tasksStreamConfig(pc)
	old.RePublish, old.Discard = nil, jetstream.DiscardOld
	_, err := js.CreateStream(ctx, old)
	require.NoError(t, err)
	_, err = js.Publish(ctx, "ansible.production.tasks", []byte(`{"task_id":"kept"}`))
	require.NoError(t, err)

	_, err = Bind(ctx, js, pc, nil)
	var ce *ConflictError
	require.ErrorAs(t, err, &ce)
	require.Contains(t, ce.Error(), "stream ANSIBLE_TASKS: discard is old on the server, ansible-worker needs new\n")
	require.Contains(t, ce.Error(), "stream ANSIBLE_TASKS: republish is none on the server, ansible-worker needs > to ansible-worker.intake.>\n")

	rep, err := Apply(ctx, js, pc, false, nil)
	require.NoError(t, err)
	require.Equal(t, "updated stream ANSIBLE_TASKS: discard old → new, republish none → > to ansible-worker.intake.>", rep.Lines()[0])
	st, err := js.Stream(ctx, TasksStream)
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(1), info.State.Msgs, "the queued task stays")
	_, err = Bind(ctx, js, pc, nil)
	require.NoError(t, err)
}

// What JetStream cannot change in place (a stream's storage) is left as
// it is, with what to do; the rest is updated, and nothing is deleted.
func TestProvisionCannotChangeStorage(t *testing.T) {
	t.Parallel()
	js := emptyServer(t)
	ctx := testCtx(t)
	pc := groupConfig("production")
	mem := eventsStreamConfig(pc)
	mem.Storage, mem.MaxAge = jetstream.MemoryStorage, time.Hour
	_, err := js.CreateStream(ctx, mem)
	require.NoError(t, err)
	_, err = js.Publish(ctx, EventSubject("g", "t1"), []byte("{}"))
	require.NoError(t, err)

	rep, err := Apply(ctx, js, pc, false, nil)
	require.NoError(t, err)
	require.Equal(t, 1, rep.Blocked())
	lines := rep.Lines()
	require.Equal(t, "updated stream ANSIBLE_EVENTS: max_age 1h0m0s → 0s", lines[1])
	require.Equal(t, `cannot change stream ANSIBLE_EVENTS: storage memory → file; JetStream cannot change it in place: `+
		`back the stream up if you need what it holds ("nats stream backup ANSIBLE_EVENTS DIR"), stop the workers, `+
		`remove it with "nats stream rm ANSIBLE_EVENTS", then run "ansible-worker provision" again`, lines[2])
	cfg := streamConfig(t, js, EventsStream)
	require.Equal(t, jetstream.MemoryStorage, cfg.Storage)
	require.Equal(t, time.Duration(0), cfg.MaxAge)

	_, err = Bind(ctx, js, pc, nil)
	var ce *ConflictError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, `stream ANSIBLE_EVENTS: storage is memory on the server, ansible-worker needs file; JetStream cannot change it in place: `+
		`back the stream up if you need what it holds ("nats stream backup ANSIBLE_EVENTS DIR"), stop the workers, `+
		`remove it with "nats stream rm ANSIBLE_EVENTS", then run "ansible-worker provision" again`, ce.Explain("x"))
	_, err = Provision(ctx, js, pc, nil)
	require.ErrorAs(t, err, &ce, "Provision reports what it could not change")
}

// A submitter creates what is missing and binds to what exists whatever
// its settings: it neither changes nor refuses them.
func TestBindSharedChangesNothing(t *testing.T) {
	t.Parallel()
	js := emptyServer(t)
	ctx := testCtx(t)
	pc := ProvisionConfig{Names: Names{Prefix: "ansible", Group: "production"}, EventsMaxAge: time.Hour}
	a, err := BindShared(ctx, js, pc, nil)
	require.NoError(t, err)
	require.Nil(t, a.Consumer, "the consumer is the workers' business")
	require.NotNil(t, a.Status)
	_, err = js.Consumer(ctx, TasksStream, pc.Consumer())
	require.ErrorIs(t, err, jetstream.ErrConsumerNotFound)
	require.Equal(t, time.Hour, streamConfig(t, js, EventsStream).MaxAge)

	pc.EventsMaxAge, pc.Replicas = 0, 1
	_, err = BindShared(ctx, js, pc, nil)
	require.NoError(t, err)
	require.Equal(t, time.Hour, streamConfig(t, js, EventsStream).MaxAge, "the workers' setting stays")
}

// The object store follows the rule: created when missing, a worker with
// another TTL refused, a client bound as it is.
func TestJobObjectsChecked(t *testing.T) {
	t.Parallel()
	js := emptyServer(t)
	ctx := testCtx(t)
	names := Names{Prefix: "ansible", Group: "production"}
	_, err := OpenJobObjects(ctx, js, names, 1, time.Hour)
	require.NoError(t, err)
	_, err = OpenJobObjects(ctx, js, names, 1, time.Hour)
	require.NoError(t, err)
	_, err = OpenJobObjects(ctx, js, names, 1, time.Minute)
	var ce *ConflictError
	require.ErrorAs(t, err, &ce)
	require.Contains(t, err.Error(), "object store ansible_jobs: ttl is 1h0m0s on the server, nats.jobs_max_age says 1m0s")
	_, err = BindJobObjects(ctx, js, names, 1, time.Minute)
	require.NoError(t, err)
}

// A consumer outside provisioning (the MQTT status mirror's) is created
// when missing and refused, with its own fix, when it contradicts.
func TestBindConsumer(t *testing.T) {
	t.Parallel()
	js, _ := provisioned(t, groupConfig("production"))
	ctx := testCtx(t)
	stream := "KV_" + StatusBucket
	want := jetstream.ConsumerConfig{Durable: "mirror", FilterSubject: "$KV.ansible_status.production.*",
		DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy, AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 1, MaxDeliver: -1}
	_, err := BindConsumer(ctx, js, stream, want, "remove it")
	require.NoError(t, err)
	cons, err := BindConsumer(ctx, js, stream, want, "remove it")
	require.NoError(t, err)
	require.Equal(t, 0, cons.CachedInfo().Config.Replicas, "the stream's replicas, left to the server")

	changed := want
	changed.MaxAckPending = 5
	_, err = BindConsumer(ctx, js, stream, changed, "remove it")
	var ce *ConflictError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "consumer mirror: max_ack_pending is 1 on the server, ansible-worker needs 5; remove it", err.Error())
	cons, err = js.Consumer(ctx, stream, "mirror")
	require.NoError(t, err)
	require.Equal(t, 1, cons.CachedInfo().Config.MaxAckPending, "never changed")
}

// Replicas a single server cannot give fail at once, naming the key.
func TestReplicasOnASingleServer(t *testing.T) {
	t.Parallel()
	js := emptyServer(t)
	ctx := testCtx(t)
	pc := groupConfig("production")
	pc.Replicas = 3
	start := time.Now()
	_, err := Bind(ctx, js, pc, nil)
	require.ErrorContains(t, err, "nats.replicas is 3, but the NATS server is not part of a cluster: set 1")
	require.Less(t, time.Since(start), 5*time.Second, "not retried")
	require.False(t, errors.Is(err, context.DeadlineExceeded))
}

// When the group's consumer cannot be created because of the stream it
// goes on, the stream's contradictions are what a worker reports.
func TestBindReportsTheStreamBeforeItsConsumer(t *testing.T) {
	t.Parallel()
	js := emptyServer(t)
	ctx := testCtx(t)
	pc := groupConfig("production")
	old := tasksStreamConfig(pc)
	old.Discard = jetstream.DiscardOld
	_, err := js.CreateStream(ctx, old)
	require.NoError(t, err)
	// A work queue takes no two consumers with overlapping filters.
	_, err = js.CreateConsumer(ctx, TasksStream, jetstream.ConsumerConfig{Durable: "all", FilterSubject: "ansible.>", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	_, err = Bind(ctx, js, pc, nil)
	var ce *ConflictError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "stream ANSIBLE_TASKS: discard is old on the server, ansible-worker needs new; run \"p\" to change it", ce.Explain("p"))
}
