package jsbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// mode is what provisioning does with each asset.
type mode int

const (
	// modeBind creates what is missing and leaves what exists (a client).
	modeBind mode = iota
	// modeCheck creates what is missing and refuses what exists with
	// contradicting settings (a worker).
	modeCheck
	// modeApply creates what is missing and updates what differs (the
	// provision command).
	modeApply
	// modePlan reports what modeApply would do and changes nothing.
	modePlan
)

// scope says which optional assets are included.
type scope struct {
	consumer bool // the group's consumer
	jobs     bool // the object store JobsBucket
}

// provisioner provisions the assets of one group.
type provisioner struct {
	js  jetstream.JetStream
	pc  ProvisionConfig
	log *slog.Logger
}

func newProvisioner(js jetstream.JetStream, pc ProvisionConfig, log *slog.Logger) provisioner {
	if pc.Replicas < 1 {
		pc.Replicas = 1
	}
	if pc.AckWait <= 0 {
		pc.AckWait = DefaultAckWait
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return provisioner{js: js, pc: pc, log: log}
}

// run takes each asset of sc through m, in order (streams before their
// consumer). In modeCheck, the contradictions of every asset come out
// together as a *ConflictError.
func (p provisioner) run(ctx context.Context, m mode, sc scope) (Report, error) {
	return p.runAssets(ctx, m, p.assets(sc))
}

// runAssets takes each of assets through m, in order.
func (p provisioner) runAssets(ctx context.Context, m mode, assets []*asset) (Report, error) {
	var rep Report
	var ce ConflictError
	for _, a := range assets {
		var ch Change
		err := provisionRetry(ctx, p.log, a.label, func(ctx context.Context) (err error) {
			ch, err = step(ctx, a, m)
			return err
		})
		if err != nil && len(ce.Conflicts) > 0 {
			// A consumer cannot be created on a stream that contradicts
			// it (more replicas): the contradiction is what to report.
			p.log.Debug("provisioning stopped", "what", a.label, "err", err)
			return rep, &ce
		}
		if err != nil {
			return rep, explainStorage(p.explainReplicas(err), p.pc)
		}
		rep.Changes = append(rep.Changes, ch)
		if c, ok := ch.conflict(); ok && m == modeCheck {
			ce.Conflicts = append(ce.Conflicts, c)
		}
	}
	if len(ce.Conflicts) > 0 {
		return rep, &ce
	}
	return rep, nil
}

// step takes one asset through m.
func step(ctx context.Context, a *asset, m mode) (Change, error) {
	ch := Change{Asset: a.label, Action: ActionUnchanged, Fix: a.fix}
	found, err := a.read(ctx)
	if err != nil {
		return ch, err
	}
	if !found {
		ch.Action, ch.Replicas = ActionCreated, a.replicas
		if m == modePlan {
			return ch, nil
		}
		err := a.create(ctx)
		if err == nil || !alreadyExists(err) {
			return ch, err
		}
		// Another process created it first, otherwise: compare with that.
		ch.Action, ch.Replicas = ActionUnchanged, 0
		if found, err = a.read(ctx); err != nil || !found {
			return ch, fmt.Errorf("created and removed at once: %w", errors.Join(err, jetstream.ErrStreamNotFound))
		}
	}
	if m == modeBind {
		return ch, nil
	}
	for _, d := range a.diff() {
		if d.Fixed {
			ch.Blocked = append(ch.Blocked, d)
		} else {
			ch.Changed = append(ch.Changed, d)
		}
	}
	if len(ch.Changed) > 0 && m >= modeApply {
		ch.Action = ActionUpdated
		if m == modeApply {
			if err := a.update(ctx); err != nil {
				return ch, fmt.Errorf("update: %w", err)
			}
		}
	}
	return ch, nil
}

// alreadyExists tells a create that lost to one with other settings.
func alreadyExists(err error) bool {
	return errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) || errors.Is(err, jetstream.ErrBucketExists) ||
		errors.Is(err, jetstream.ErrConsumerExists) || errors.Is(err, jetstream.ErrConsumerNameAlreadyInUse)
}

// errCodeReplicasNotSupported is "replicas > 1 not supported in
// non-clustered mode".
const errCodeReplicasNotSupported jetstream.ErrorCode = 10074

// explainReplicas says which key asks for replicas a single server cannot
// give.
func (p provisioner) explainReplicas(err error) error {
	var ae *jetstream.APIError
	if errors.As(err, &ae) && ae.ErrorCode == errCodeReplicasNotSupported {
		return fmt.Errorf("%w: nats.replicas is %d, but the NATS server is not part of a cluster: set 1", err, p.pc.Replicas)
	}
	return err
}

// assets lists the group's assets in the order they are provisioned.
func (p provisioner) assets(sc scope) []*asset {
	pc := p.pc
	out := []*asset{
		p.stream("stream "+TasksStream, TasksStream, tasksStreamSettings(pc), tasksFix, p.createStream(tasksStreamConfig(pc))),
		p.stream("stream "+EventsStream, EventsStream, eventsStreamSettings(pc, "", RunnerPrefix+".>"),
			streamFix(EventsStream), p.createStream(eventsStreamConfig(pc))),
		p.stream("stream "+ResponsesStream, ResponsesStream, eventsStreamSettings(pc, "worker.topic_prefix", pc.ResponsesWildcard()),
			streamFix(ResponsesStream), p.createStream(responsesStreamConfig(pc))),
		p.bucket(StatusBucket, "latest TaskStatus per task, key <group>.<task_id>"),
		p.bucket(ClaimsBucket, "stream sequence that claimed each task id"),
	}
	if sc.jobs {
		out = append(out, p.jobs())
	}
	if sc.consumer {
		out = append(out, p.consumer())
	}
	return out
}

// createStream creates the stream cfg.
func (p provisioner) createStream(cfg jetstream.StreamConfig) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := p.js.CreateStream(ctx, cfg)
		return err
	}
}

// jobs is the object store of runner jobs.
func (p provisioner) jobs() *asset {
	settings := []streamSetting{
		maxAgeSetting("ttl", "nats.jobs_max_age", p.pc.JobsMaxAge), storageSetting(), replicasSetting(p.pc.Replicas),
	}
	return p.stream("object store "+JobsBucket, jobsStream, settings, streamFix(jobsStream), func(ctx context.Context) error {
		_, err := p.js.CreateObjectStore(ctx, jobsStoreConfig(p.pc.Replicas, p.pc.JobsMaxAge))
		return err
	})
}

// stream is the asset of a stream, or of the stream under a bucket or an
// object store.
func (p provisioner) stream(label, name string, settings []streamSetting, fix string, create func(context.Context) error) *asset {
	load := func(ctx context.Context) (*jetstream.StreamConfig, error) {
		st, err := p.js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		c := st.CachedInfo().Config
		return &c, nil
	}
	store := func(ctx context.Context, c jetstream.StreamConfig) error {
		if c.MaxAge > 0 && c.Duplicates > c.MaxAge {
			c.Duplicates = c.MaxAge // the server wants no more than MaxAge
		}
		_, err := p.js.UpdateStream(ctx, c)
		return err
	}
	return newAsset(label, p.pc.Replicas, fix, settings, load, create, store)
}

func (p provisioner) bucket(name, desc string) *asset {
	settings := []streamSetting{
		maxAgeSetting("ttl", "nats.status_ttl", p.pc.StatusTTL), storageSetting(), replicasSetting(p.pc.Replicas),
		historySetting(bucketHistory),
	}
	return p.stream("bucket "+name, "KV_"+name, settings, streamFix("KV_"+name), func(ctx context.Context) error {
		_, err := p.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: name, Description: desc, History: bucketHistory,
			TTL: p.pc.StatusTTL, Storage: jetstream.FileStorage, Replicas: p.pc.Replicas})
		return err
	})
}

// bucketHistory is how many values of a key the status and claims
// buckets keep.
const bucketHistory = 10

// consumer is the group's durable consumer on the tasks stream.
func (p provisioner) consumer() *asset {
	want := groupConsumerConfig(p.pc)
	settings := []consumerSetting{
		filterSetting("worker.topic_prefix", want.FilterSubject), ackPolicySetting(want.AckPolicy),
		ackWaitSetting("worker.ack_wait", want.AckWait), maxDeliverSetting(want.MaxDeliver),
		maxAckPendingSetting(want.MaxAckPending, true),
	}
	fix := fmt.Sprintf(`JetStream cannot change it in place: stop the group's workers, remove the consumer with "nats consumer rm %s %s" (queued tasks stay in the stream), then run %q again`,
		TasksStream, want.Durable, provisionCommand)
	return p.consumerAsset(TasksStream, want, p.pc.Replicas, settings, fix)
}

// consumerAsset is the asset of the durable consumer want on stream, with
// replicas (its stream's).
func (p provisioner) consumerAsset(stream string, want jetstream.ConsumerConfig, replicas int, settings []consumerSetting, fix string) *asset {
	load := func(ctx context.Context) (*jetstream.ConsumerConfig, error) {
		cons, err := p.js.Consumer(ctx, stream, want.Durable)
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		c := cons.CachedInfo().Config
		return &c, nil
	}
	create := func(ctx context.Context) error { _, err := p.js.CreateConsumer(ctx, stream, want); return err }
	store := func(ctx context.Context, c jetstream.ConsumerConfig) error {
		_, err := p.js.UpdateConsumer(ctx, stream, c)
		return err
	}
	return newAsset("consumer "+want.Durable, replicas, fix, settings, load, create, store)
}

// bind looks up every asset of sc.
func (p provisioner) bind(ctx context.Context, sc scope) (*Assets, error) {
	a := &Assets{}
	err := provisionRetry(ctx, p.log, "bind", func(ctx context.Context) (err error) {
		if a.Tasks, err = p.js.Stream(ctx, TasksStream); err != nil {
			return err
		}
		if a.Events, err = p.js.Stream(ctx, EventsStream); err != nil {
			return err
		}
		if a.Responses, err = p.js.Stream(ctx, ResponsesStream); err != nil {
			return err
		}
		if a.Status, err = p.js.KeyValue(ctx, StatusBucket); err != nil {
			return err
		}
		if a.Claims, err = p.js.KeyValue(ctx, ClaimsBucket); err != nil {
			return err
		}
		if sc.jobs {
			if a.Jobs, err = p.js.ObjectStore(ctx, JobsBucket); err != nil {
				return err
			}
		}
		if sc.consumer {
			a.Consumer, err = a.Tasks.Consumer(ctx, p.pc.Consumer())
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// tasksFix is what to do about a setting of the tasks stream JetStream
// cannot change in place.
var tasksFix = fmt.Sprintf(`JetStream cannot change it in place: stop submitting, let the workers empty the queue ("nats stream info %s" shows 0 messages), stop them, remove the stream with "nats stream rm %s", then run %q again`,
	TasksStream, TasksStream, provisionCommand)

// streamFix is what to do about a setting of another stream (or of the
// stream under a bucket) JetStream cannot change in place.
func streamFix(stream string) string {
	return fmt.Sprintf(`JetStream cannot change it in place: back the stream up if you need what it holds ("nats stream backup %s DIR"), stop the workers, remove it with "nats stream rm %s", then run %q again`,
		stream, stream, provisionCommand)
}

// tasksStreamSettings are the tasks stream's settings a worker relies on.
func tasksStreamSettings(pc ProvisionConfig) []streamSetting {
	want := tasksStreamConfig(pc)
	return []streamSetting{
		subjectsSetting("worker.topic_prefix", want.Subjects...), retentionSetting(want.Retention), storageSetting(),
		replicasSetting(want.Replicas), maxAgeSetting("max_age", "nats.tasks_max_age", want.MaxAge),
		maxBytesSetting("nats.tasks_max_bytes", want.MaxBytes), maxMsgSizeSetting("nats.tasks_max_msg_size", want.MaxMsgSize),
		duplicatesSetting(want.Duplicates, false), discardSetting(want.Discard), republishSetting(want.RePublish),
	}
}

// eventsStreamSettings are those of the events and responses streams,
// which must hold subject.
func eventsStreamSettings(pc ProvisionConfig, source, subject string) []streamSetting {
	return []streamSetting{
		subjectsSetting(source, subject), retentionSetting(jetstream.LimitsPolicy), storageSetting(),
		replicasSetting(pc.Replicas), maxAgeSetting("max_age", "nats.events_max_age", pc.EventsMaxAge),
		duplicatesSetting(eventsWindow(pc), true),
	}
}

// eventsWindow is the duplicates window of the events and responses
// streams: no more than their max age.
func eventsWindow(pc ProvisionConfig) time.Duration {
	if pc.EventsMaxAge > 0 {
		return min(eventsDuplicates, pc.EventsMaxAge)
	}
	return eventsDuplicates
}

func eventsStreamConfig(pc ProvisionConfig) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        EventsStream,
		Description: "ansible-runner events and statuses",
		Subjects:    []string{RunnerPrefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    pc.Replicas,
		MaxAge:      pc.EventsMaxAge,
		Duplicates:  eventsWindow(pc),
	}
}

// responsesStreamConfig: responses are kept as long as events.
func responsesStreamConfig(pc ProvisionConfig) jetstream.StreamConfig {
	c := eventsStreamConfig(pc)
	c.Name, c.Subjects = ResponsesStream, []string{pc.ResponsesWildcard()}
	c.Description = "answers to named-job requests: started, working, success or failure"
	return c
}

func groupConsumerConfig(pc ProvisionConfig) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       pc.Consumer(),
		Description:   "workers of group " + pc.Group,
		FilterSubject: pc.TaskSubject(),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       pc.AckWait,
		// Workers count deliveries themselves and end a task that keeps
		// failing; a server-side limit would leave it stuck in the stream.
		MaxDeliver:    -1,
		MaxAckPending: 10000,
		// Replicas 0: the stream's, which JetStream requires of a work
		// queue's consumer; it moves the consumer along when the stream's
		// replicas change, where setting them here would have to wait for
		// the stream to finish moving.
		Replicas: 0,
	}
}

// BindConsumer binds to the durable consumer want.Durable on stream, and
// creates it as want when it is missing. One that exists is never changed:
// when its filter, delivery, acknowledgement or redelivery settings differ
// from want, the error is a *ConflictError whose fix is fix (the provision
// command does not manage such a consumer).
func BindConsumer(ctx context.Context, js jetstream.JetStream, stream string, want jetstream.ConsumerConfig, fix string) (jetstream.Consumer, error) {
	p := newProvisioner(js, ProvisionConfig{}, nil)
	settings := []consumerSetting{
		filterSetting("", want.FilterSubject), deliverPolicySetting(want.DeliverPolicy), ackPolicySetting(want.AckPolicy),
		maxAckPendingSetting(want.MaxAckPending, false), maxDeliverSetting(want.MaxDeliver),
	}
	for i := range settings {
		settings[i].fixed = always[jetstream.ConsumerConfig]
	}
	if _, err := p.runAssets(ctx, modeCheck, []*asset{p.consumerAsset(stream, want, want.Replicas, settings, fix)}); err != nil {
		return nil, err
	}
	return js.Consumer(ctx, stream, want.Durable)
}
