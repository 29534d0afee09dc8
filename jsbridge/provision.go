package jsbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ansible-worker/ansible-worker/config"
	"github.com/ansible-worker/ansible-worker/retry"
)

// DefaultAckWait is how long a delivered task may go without an ack or an
// in-progress heartbeat before JetStream hands it to another worker. Workers
// heartbeat at a third of it, so a dead worker's task is redelivered within
// this time.
const DefaultAckWait = 30 * time.Second

// ProvisionConfig says what to create, and what settings a worker expects
// of what exists.
type ProvisionConfig struct {
	Names
	// Replicas of streams, bucket and consumer (1 for a single server).
	Replicas int
	// EventsMaxAge bounds how long runner events are kept (0: for ever).
	EventsMaxAge time.Duration
	// StatusTTL bounds how long a status and a claim are kept after their
	// last update (0: for ever).
	StatusTTL time.Duration
	// AckWait of the group's consumer (0: DefaultAckWait).
	AckWait time.Duration
	// TasksMaxMsgSize is the largest message the tasks stream stores, in
	// bytes, headers included (0 or -1: the server's max_payload).
	TasksMaxMsgSize int32
	// TasksMaxBytes bounds the tasks stream's size in bytes (0 or -1: no
	// limit). A publish beyond it is refused, nothing stored is dropped.
	TasksMaxBytes int64
	// TasksMaxAge is how long a task may stay in the tasks stream (0: for
	// ever).
	TasksMaxAge time.Duration
	// JobsMaxAge is how long the files of runner jobs stay in JobsBucket
	// (0: for ever).
	JobsMaxAge time.Duration
	// Jobs makes the object store JobsBucket one of the assets (workers
	// that run runner jobs need it).
	Jobs bool
}

// tasksDuplicates is the tasks stream's window for Nats-Msg-Id duplicates.
const tasksDuplicates = 10 * time.Minute

// eventsDuplicates is the window of the events and responses streams.
const eventsDuplicates = 2 * time.Minute

// Assets are the provisioned streams, buckets and consumer of one group.
type Assets struct {
	Tasks     jetstream.Stream
	Events    jetstream.Stream
	Responses jetstream.Stream
	Status    jetstream.KeyValue
	Claims    jetstream.KeyValue
	Consumer  jetstream.Consumer
	// Jobs is JobsBucket, when ProvisionConfig.Jobs asked for it.
	Jobs jetstream.ObjectStore
}

// Provision creates or updates every asset of the group as pc says, as
// the provision command does (without its report), and binds to them. A
// setting JetStream cannot change in place is left as it is, and the error
// is a *ConflictError naming it.
func Provision(ctx context.Context, js jetstream.JetStream, pc ProvisionConfig, log *slog.Logger) (*Assets, error) {
	rep, err := Apply(ctx, js, pc, false, log)
	if err != nil {
		return nil, err
	}
	var ce ConflictError
	for _, c := range rep.Changes {
		if len(c.Blocked) > 0 {
			ce.Conflicts = append(ce.Conflicts, Conflict{Asset: c.Asset, Differences: c.Blocked, Fix: c.Fix})
		}
	}
	if len(ce.Conflicts) > 0 {
		return nil, &ce
	}
	return newProvisioner(js, pc, log).bind(ctx, scope{consumer: true, jobs: pc.Jobs})
}

// Apply creates every missing asset of the group (streams, buckets, the
// object store when pc.Jobs, the group's consumer) and updates, in place,
// the settings of existing ones that differ from pc. It reports, per
// asset, what it did; with dryRun it changes nothing and reports what it
// would do. Settings JetStream cannot change in place (a stream's storage,
// work-queue retention, a consumer's ack policy) are left as they are and
// reported as blocked, with what to do: nothing is ever deleted. Settings
// of other prefixes' groups (the streams' other subjects) stay.
func Apply(ctx context.Context, js jetstream.JetStream, pc ProvisionConfig, dryRun bool, log *slog.Logger) (Report, error) {
	m := modeApply
	if dryRun {
		m = modePlan
	}
	rep, err := newProvisioner(js, pc, log).run(ctx, m, scope{consumer: true, jobs: pc.Jobs})
	rep.DryRun = dryRun
	return rep, err
}

// Bind is how a worker starts: it creates each asset of the group that is
// missing (all of them on a new server, so one worker is enough there;
// the consumer of a new group on shared streams), and binds to those that
// exist without changing them. When the settings of one that exists
// contradict pc, the error is a *ConflictError naming every difference:
// the provision command changes shared settings, never a worker.
func Bind(ctx context.Context, js jetstream.JetStream, pc ProvisionConfig, log *slog.Logger) (*Assets, error) {
	p := newProvisioner(js, pc, log)
	sc := scope{consumer: true, jobs: pc.Jobs}
	if _, err := p.run(ctx, modeCheck, sc); err != nil {
		return nil, err
	}
	return p.bind(ctx, sc)
}

// BindShared is what a submitter needs: the streams and buckets, created
// as pc says when missing, so tasks can be submitted before any worker
// ever ran, and bound as they are when they exist, whatever their
// settings. Assets.Consumer is nil; the consumer is its workers' business.
func BindShared(ctx context.Context, js jetstream.JetStream, pc ProvisionConfig, log *slog.Logger) (*Assets, error) {
	p := newProvisioner(js, pc, log)
	if _, err := p.run(ctx, modeBind, scope{}); err != nil {
		return nil, err
	}
	return p.bind(ctx, scope{})
}

// ProvisionSettings is the ProvisionConfig of the configuration cfg for
// names: the nats.* limits and replicas, the worker's ack wait, and the
// object store when the worker runs runner jobs.
func ProvisionSettings(cfg *config.Config, names Names) ProvisionConfig {
	return ProvisionConfig{
		Names: names, Replicas: cfg.NATS.Replicas, AckWait: cfg.Worker.AckWaitDuration(),
		StatusTTL: cfg.NATS.StatusTTLDuration(), EventsMaxAge: cfg.NATS.EventsMaxAgeDuration(),
		TasksMaxMsgSize: int32(cfg.NATS.TasksMaxMsgSize), TasksMaxBytes: cfg.NATS.TasksMaxBytes,
		TasksMaxAge: cfg.NATS.TasksMaxAgeDuration(), JobsMaxAge: cfg.NATS.JobsMaxAgeDuration(),
		Jobs: cfg.Worker.AllowRunnerJobs,
	}
}

// tasksStreamConfig is the configuration of the tasks stream for pc.
func tasksStreamConfig(pc ProvisionConfig) jetstream.StreamConfig {
	dupes := tasksDuplicates
	if pc.TasksMaxAge > 0 {
		dupes = min(dupes, pc.TasksMaxAge) // the server wants no more than MaxAge
	}
	return jetstream.StreamConfig{
		Name:        TasksStream,
		Description: "ansible-worker task queue",
		Subjects:    []string{pc.TasksWildcard()},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    pc.Replicas,
		Duplicates:  dupes,
		// Publishers are not trusted: a full stream refuses a publish with
		// an error rather than dropping what it holds, and neither an
		// oversized message nor a forgotten group fills it for ever.
		MaxMsgSize: pc.TasksMaxMsgSize,
		MaxBytes:   pc.TasksMaxBytes,
		MaxAge:     pc.TasksMaxAge,
		Discard:    jetstream.DiscardNew,
		// Every stored submission is echoed on IntakePrefix, so workers
		// learn of it at once (queued status, duplicates, queue limit),
		// whoever submitted it and however.
		RePublish: &jetstream.RePublish{Source: ">", Destination: IntakePrefix + ".>"},
	}
}

// errCodeStorageExceeded is JetStream's "insufficient storage resources
// available".
const errCodeStorageExceeded jetstream.ErrorCode = 10047

// errCodeNoSuitablePeers is JetStream's "no suitable peers for placement"
// of a replicated stream or consumer, with the reasons.
const errCodeNoSuitablePeers jetstream.ErrorCode = 10005

// errCodeStreamInvalidConfig is a stream configuration the server refuses
// (a 500 too).
const errCodeStreamInvalidConfig jetstream.ErrorCode = 10052

// explainStorage adds to err what to do when the server runs out of storage
// to reserve: JetStream sets the tasks stream's max bytes aside at once, which
// may leave too little for the tasks stream itself or for what comes after.
func explainStorage(err error, pc ProvisionConfig) error {
	var ae *jetstream.APIError
	if errors.As(err, &ae) && pc.TasksMaxBytes > 0 && ae.ErrorCode == errCodeStorageExceeded {
		return fmt.Errorf("%w: JetStream sets nats.tasks_max_bytes (%d) aside in full, on each replica: lower it to fit the server's and the account's JetStream storage, or set -1",
			err, pc.TasksMaxBytes)
	}
	return err
}

// provisionRetry runs fn until it succeeds, the error is permanent, or ctx
// ends. Concurrent creates race with "already in use" errors and a fresh
// cluster answers "no leader" for a while: both go away by themselves.
func provisionRetry(ctx context.Context, log *slog.Logger, what string, fn func(context.Context) error) error {
	err := retry.Do(ctx, retry.Policy{Initial: 50 * time.Millisecond, Max: time.Second, Attempts: 20},
		func(ctx context.Context) error {
			actx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			err := fn(actx)
			if err != nil && !transient(err) {
				return retry.Permanent(err)
			}
			return err
		}, func(attempt int, err error) {
			log.Debug("provisioning retry", "what", what, "attempt", attempt, "err", err)
		})
	if err != nil {
		return fmt.Errorf("provision %s: %w", what, err)
	}
	return nil
}

func transient(err error) bool {
	var ae *jetstream.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode {
		case errCodeStorageExceeded, errCodeReplicasNotSupported, errCodeStreamInvalidConfig:
			return false // a 500 that stays until the configuration changes
		case errCodeNoSuitablePeers:
			// A 400, but a server down or just up (a new cluster's meta
			// leader has not heard from every node yet) comes back.
			return strings.Contains(ae.Description, "peer offline")
		case jetstream.JSErrCodeStreamNameInUse, jetstream.JSErrCodeConsumerAlreadyExists, jetstream.JSErrCodeConsumerExists,
			jetstream.JSErrCodeJetStreamNotEnabled, 10008 /* cluster not available */, 10009 /* no leader */ :
			return true
		}
		return ae.Code == 503 || ae.Code == 500
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) ||
		errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) || errors.Is(err, jetstream.ErrConsumerExists) ||
		errors.Is(err, jetstream.ErrBucketExists)
}
