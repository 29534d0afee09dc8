package jsbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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

// ProvisionConfig says what to create.
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
}

// tasksDuplicates is the tasks stream's window for Nats-Msg-Id duplicates.
const tasksDuplicates = 10 * time.Minute

// Assets are the provisioned streams, buckets and consumer of one group.
type Assets struct {
	Tasks     jetstream.Stream
	Events    jetstream.Stream
	Responses jetstream.Stream
	Status    jetstream.KeyValue
	Claims    jetstream.KeyValue
	Consumer  jetstream.Consumer
}

// Provision creates or updates, idempotently, everything a worker of the
// group needs. Several workers may run it at the same moment: a create that
// loses a race is retried as an update.
func Provision(ctx context.Context, js jetstream.JetStream, pc ProvisionConfig, log *slog.Logger) (*Assets, error) {
	a, err := provision(ctx, js, pc, true, log)
	if err != nil {
		return nil, explainStorage(err, pc)
	}
	return a, nil
}

// ProvisionShared is Provision without the group's consumer: the streams
// and buckets a submitter needs, created the way a worker creates them, so
// tasks can be submitted before any worker ever ran. Assets.Consumer is
// nil; the consumer is its workers' business.
func ProvisionShared(ctx context.Context, js jetstream.JetStream, pc ProvisionConfig, log *slog.Logger) (*Assets, error) {
	a, err := provision(ctx, js, pc, false, log)
	if err != nil {
		return nil, explainStorage(err, pc)
	}
	return a, nil
}

// ProvisionSettings is the ProvisionConfig of the configuration cfg for
// names: the nats.* limits and replicas, the worker's ack wait.
func ProvisionSettings(cfg *config.Config, names Names) ProvisionConfig {
	return ProvisionConfig{
		Names: names, Replicas: cfg.NATS.Replicas, AckWait: cfg.Worker.AckWaitDuration(),
		StatusTTL: cfg.NATS.StatusTTLDuration(), EventsMaxAge: cfg.NATS.EventsMaxAgeDuration(),
		TasksMaxMsgSize: int32(cfg.NATS.TasksMaxMsgSize), TasksMaxBytes: cfg.NATS.TasksMaxBytes,
		TasksMaxAge: cfg.NATS.TasksMaxAgeDuration(), JobsMaxAge: cfg.NATS.JobsMaxAgeDuration(),
	}
}

func provision(ctx context.Context, js jetstream.JetStream, pc ProvisionConfig, withConsumer bool, log *slog.Logger) (*Assets, error) {
	if pc.Replicas < 1 {
		pc.Replicas = 1
	}
	if pc.AckWait <= 0 {
		pc.AckWait = DefaultAckWait
	}
	a := &Assets{}
	for _, step := range []struct {
		what string
		make func(context.Context) error
	}{
		{"stream " + TasksStream, func(ctx context.Context) (err error) { a.Tasks, err = tasksStream(ctx, js, pc); return }},
		{"stream " + EventsStream, func(ctx context.Context) (err error) { a.Events, err = eventsStream(ctx, js, pc); return }},
		{"stream " + ResponsesStream, func(ctx context.Context) (err error) { a.Responses, err = responsesStream(ctx, js, pc); return }},
		{"bucket " + StatusBucket, func(ctx context.Context) (err error) {
			a.Status, err = bucket(ctx, js, pc, StatusBucket, "latest TaskStatus per task, key <group>.<task_id>")
			return
		}},
		{"bucket " + ClaimsBucket, func(ctx context.Context) (err error) {
			a.Claims, err = bucket(ctx, js, pc, ClaimsBucket, "stream sequence that claimed each task id")
			return
		}},
		{"consumer " + pc.Consumer(), func(ctx context.Context) (err error) { a.Consumer, err = consumer(ctx, a.Tasks, pc); return }},
	} {
		if step.what == "consumer "+pc.Consumer() && !withConsumer {
			continue
		}
		if err := provisionRetry(ctx, log, step.what, step.make); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// tasksStream creates or updates the tasks stream. An older version's
// stream is updated in place: limits and discard policy may change on a
// work-queue stream.
func tasksStream(ctx context.Context, js jetstream.JetStream, pc ProvisionConfig) (jetstream.Stream, error) {
	cfg := tasksStreamConfig(pc)
	// Keep subjects another prefix added to a shared stream.
	if st, err := js.Stream(ctx, TasksStream); err == nil {
		for _, s := range st.CachedInfo().Config.Subjects {
			if !slices.Contains(cfg.Subjects, s) {
				cfg.Subjects = append(cfg.Subjects, s)
			}
		}
	}
	return js.CreateOrUpdateStream(ctx, cfg)
}

func eventsStream(ctx context.Context, js jetstream.JetStream, pc ProvisionConfig) (jetstream.Stream, error) {
	return js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        EventsStream,
		Description: "ansible-runner events and statuses",
		Subjects:    []string{RunnerPrefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    pc.Replicas,
		MaxAge:      pc.EventsMaxAge,
		Duplicates:  2 * time.Minute,
	})
}

// responsesStream creates or updates the responses stream, keeping the
// subjects other prefixes added; responses are kept as long as events.
func responsesStream(ctx context.Context, js jetstream.JetStream, pc ProvisionConfig) (jetstream.Stream, error) {
	subjects := []string{pc.ResponsesWildcard()}
	if st, err := js.Stream(ctx, ResponsesStream); err == nil {
		for _, s := range st.CachedInfo().Config.Subjects {
			if !slices.Contains(subjects, s) {
				subjects = append(subjects, s)
			}
		}
	}
	return js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        ResponsesStream,
		Description: "answers to named-job requests: started, working, success or failure",
		Subjects:    subjects,
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    pc.Replicas,
		MaxAge:      pc.EventsMaxAge,
		Duplicates:  2 * time.Minute,
	})
}

func bucket(ctx context.Context, js jetstream.JetStream, pc ProvisionConfig, name, desc string) (jetstream.KeyValue, error) {
	return js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      name,
		Description: desc,
		History:     10,
		TTL:         pc.StatusTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    pc.Replicas,
	})
}

func consumer(ctx context.Context, tasks jetstream.Stream, pc ProvisionConfig) (jetstream.Consumer, error) {
	return tasks.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       pc.Consumer(),
		Description:   "workers of group " + pc.Group,
		FilterSubject: pc.TaskSubject(),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       pc.AckWait,
		// Workers count deliveries themselves and end a task that keeps
		// failing; a server-side limit would leave it stuck in the stream.
		MaxDeliver:    -1,
		MaxAckPending: 10000,
		Replicas:      pc.Replicas,
	})
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
		case errCodeStorageExceeded:
			return false // a 500 that stays until the configuration changes
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
