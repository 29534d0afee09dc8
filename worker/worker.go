// Package worker is the task lifecycle: it takes tasks from the group's queue
// when it has a free slot, validates them, runs ansible-playbook with the
// event callback plugin, and reports every step as runner events, runner
// statuses and TaskStatus.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ansible-worker/ansible-worker/config"
	"github.com/ansible-worker/ansible-worker/retry"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// Causes with which a running task's context is cancelled.
var (
	// ErrTimeout ends a task that ran past its timeout.
	ErrTimeout = errors.New("task timed out")
	// ErrCancelled ends a task a user cancelled.
	ErrCancelled = errors.New("task cancelled")
	// ErrShutdown ends a task whose worker is stopping; it is handed back.
	ErrShutdown = errors.New("worker shutting down")
)

// Config is what a worker needs to know; the command line fills it from the
// configuration file.
type Config struct {
	// Group is the worker group whose tasks this worker runs.
	Group string
	// QueueName names the group's queue in logs (its subject).
	QueueName string
	// WorkerID names this worker in statuses and logs.
	WorkerID string
	// PlaybookDir contains every playbook and inventory a task may use.
	PlaybookDir string
	// AnsiblePlaybook is the executable to run.
	AnsiblePlaybook string
	// AllowPlaybooks, when not empty, lists the glob patterns a playbook
	// path must match.
	AllowPlaybooks []string
	// PlaybooksOff refuses tasks that name a playbook: the group runs
	// named jobs only (worker.allow_playbooks: false).
	PlaybooksOff bool
	// Jobs returns the named jobs as they are now (the jobs file is read
	// again on SIGHUP); nil means none.
	Jobs func() config.Jobs
	// Policy is what submitters may choose beyond paths.
	Policy Policy
	// Concurrency is how many tasks run at once.
	Concurrency int
	// MaxQueueSize refuses a submission that finds this many tasks of the
	// group waiting (0: no limit).
	MaxQueueSize int
	// MaxDeliver is how many deliveries a task gets before it is failed.
	MaxDeliver int
	// TaskTimeout applies to tasks that set none (0: no limit).
	TaskTimeout time.Duration
	// StatusInterval is the period of status updates while running.
	StatusInterval time.Duration
	// KillGrace is the time between SIGINT and SIGKILL when a run is stopped.
	KillGrace time.Duration
	// ShutdownGrace is how long running tasks may go on after a stop signal
	// before they are handed back.
	ShutdownGrace time.Duration
	// GitTimeout bounds git pull.
	GitTimeout time.Duration
	// AckWait is the consumer's ack wait; the worker heartbeats at a third
	// of it.
	AckWait time.Duration
	// DataDir holds per-task scratch files and the callback plugin. It must
	// be private to the worker's user (see New). Default
	// config.DefaultDataDir().
	DataDir string
	// HiddenEnv are environment variables playbooks must not inherit (the
	// ones the configuration file referred to, which may hold secrets).
	HiddenEnv []string
	// MaxEventBytes bounds an encoded event (the server's max_payload less
	// room for headers); larger events are shrunk (0: no bound).
	MaxEventBytes int
	// EventColor keeps Ansible's ANSI colours in the events' stdout, as
	// ansible-runner's events have them (see Process.Color).
	EventColor bool
	// Supervisor is the ansible-worker binary, which supervises each
	// playbook run so nothing of it outlives the worker ("" runs
	// ansible-playbook directly).
	Supervisor string
	// WarmStart forks playbooks from a process that imported Ansible once
	// (see Warm), on Linux, when ansible-playbook is a Python script.
	WarmStart bool
	// StoreWait is how long a delivery waits in place, heartbeating, for a
	// Ledger read that gets no answer before it is retried later (default
	// DefaultStoreWait).
	StoreWait time.Duration
}

func (c *Config) setDefaults() {
	if c.Concurrency < 1 {
		c.Concurrency = 1
	}
	if c.MaxDeliver < 1 {
		c.MaxDeliver = 3
	}
	if c.AnsiblePlaybook == "" {
		c.AnsiblePlaybook = "ansible-playbook"
	}
	if c.StatusInterval <= 0 {
		c.StatusInterval = 2 * time.Second
	}
	if c.KillGrace <= 0 {
		c.KillGrace = 10 * time.Second
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 30 * time.Second
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.GitTimeout <= 0 {
		c.GitTimeout = time.Minute
	}
	if c.StoreWait <= 0 {
		c.StoreWait = DefaultStoreWait
	}
	if c.DataDir == "" {
		c.DataDir = config.DefaultDataDir()
	}
}

// DefaultAckWait is the ack wait a Config without one assumes (the
// queue's redelivery timer; the worker heartbeats at a third of it).
const DefaultAckWait = 30 * time.Second

// DefaultStoreWait outlasts a cluster's leader election (up to about 10 s
// seen), so a delivery rides it out in place: a retry later is a new
// delivery, which counts as an attempt and toward max_deliver.
const DefaultStoreWait = 15 * time.Second

// Worker runs tasks of one group.
type Worker struct {
	cfg       Config
	ports     Ports
	log       *slog.Logger
	pluginDir string
	// supervisors is nil when Config.Supervisor is empty.
	supervisors *Supervisors
	// warm is nil when warm starts are off or unavailable.
	warm *Warm
	// queue bounds the waiting tasks between consumer reads (queueFull).
	queue queueBound
	// obs is Ports.Observer, or one that tells nobody.
	obs Observer

	gitMu    sync.Mutex
	gitLocks map[string]*sync.Mutex
	// execProcess runs a playbook; tests of the lifecycle replace it.
	execProcess func(context.Context, *Process) (Exit, error)
	ready       chan struct{}

	mu      sync.Mutex
	running map[string]context.CancelCauseFunc
	// ended counts the tasks that reached each final state here.
	ended map[schemas.State]int64
}

// New checks the configuration and installs the callback plugin. It refuses
// a data directory, or callback plugin, that another local user could have
// written: owned by another user than the worker's or root, writable by
// group or others, or below a directory such a user could swap it in.
func New(cfg Config, ports Ports, log *slog.Logger) (*Worker, error) {
	cfg.setDefaults()
	var obs Observer = noObserver{}
	if ports.Observer != nil {
		obs = ports.Observer
	}
	if st, err := os.Stat(cfg.PlaybookDir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("playbook directory %q is not a directory", cfg.PlaybookDir)
	}
	dir, err := ownGuard.ownFiles(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if err := CompileCallback(dir, cfg.AnsiblePlaybook); err != nil {
		log.Warn("callback plugin not precompiled; each run compiles it", "err", err)
	}
	return &Worker{
		cfg: cfg, ports: ports, obs: obs, log: log.With("worker", cfg.WorkerID, "group", cfg.Group),
		pluginDir: dir, gitLocks: map[string]*sync.Mutex{}, running: map[string]context.CancelCauseFunc{},
		ended: map[schemas.State]int64{},
		execProcess: func(ctx context.Context, p *Process) (Exit, error) {
			p.Color = cfg.EventColor // a setting of the worker, not of the task
			return p.Run(ctx)
		},
		ready: make(chan struct{}),
	}, nil
}

// Ready is closed once the worker listens for submissions and cancels and
// pulls tasks: what a health check or a test waits for.
func (w *Worker) Ready() <-chan struct{} { return w.ready }

// pullWait is how long one pull request waits at the server for a task.
const pullWait = 10 * time.Second

// Run takes and runs tasks until ctx ends. Then it takes no more, lets running
// tasks finish within ShutdownGrace, stops the rest and hands them back to
// the queue for another worker, and returns. Every goroutine it starts has
// ended when it returns.
func (w *Worker) Run(ctx context.Context) error {
	// Tasks outlive ctx by the grace period; life bounds the publishing of
	// their last messages.
	life, endLife := context.WithCancel(context.WithoutCancel(ctx))
	defer endLife()
	tasks, stopTasks := context.WithCancelCause(life)
	defer stopTasks(nil)

	stopIntake, err := w.ports.Source.Notify(w.intake)
	if err != nil {
		return fmt.Errorf("listen for submissions: %w", err)
	}
	defer stopIntake()
	stopCancels, err := w.ports.Cancels.Serve(w.cancelLocal, w.decideCancel)
	if err != nil {
		return fmt.Errorf("listen for cancel requests: %w", err)
	}
	defer stopCancels()
	if w.cfg.Supervisor != "" {
		w.supervisors = NewSupervisors(w.cfg.Supervisor, w.cfg.Concurrency, w.cfg.HiddenEnv...)
		defer w.supervisors.Close()
	}
	if w.cfg.WarmStart {
		w.startWarm()
		if w.warm != nil {
			defer w.warm.Close()
		}
	}

	var g errgroup.Group
	g.Go(func() error { w.catchUp(ctx); return nil })
	slots := &errgroup.Group{}
	for range w.cfg.Concurrency {
		slots.Go(func() error { w.slot(ctx, tasks, life); return nil })
	}
	close(w.ready)
	w.log.Info("worker started", "concurrency", w.cfg.Concurrency, "subject", w.cfg.QueueName,
		"playbook_directory", w.cfg.PlaybookDir)
	<-ctx.Done()
	w.log.Info("stopping: taking no more tasks", "grace", w.cfg.ShutdownGrace)
	stopIntake()
	w.drain(slots, stopTasks)
	_ = g.Wait()
	w.log.Info("worker stopped")
	return nil
}

// startWarm primes the warm process for the tasks of the playbook
// directory; where it cannot be had, tasks start cold.
func (w *Worker) startWarm() {
	wm, err := NewWarm(w.cfg.AnsiblePlaybook, w.cfg.DataDir, w.log.With("warm", true))
	if err != nil {
		w.log.Info("warm start off; playbooks start cold", "why", err)
		return
	}
	dir, err := filepath.EvalSymlinks(w.cfg.PlaybookDir)
	if err == nil {
		dir, err = filepath.Abs(dir)
	}
	if err != nil {
		w.log.Info("warm start off; playbooks start cold", "why", err)
		return
	}
	w.warm = wm
	// As command makes a task's process, but for its scratch directory.
	wm.Prime(&Process{Executable: w.cfg.AnsiblePlaybook, Dir: dir, PluginDir: w.pluginDir, Color: w.cfg.EventColor,
		Env: w.taskEnv(filepath.Join(w.cfg.DataDir, "scratch"), nil)})
}

// drain waits for the running tasks: ShutdownGrace, then they are stopped
// and handed back.
func (w *Worker) drain(slots *errgroup.Group, stopTasks context.CancelCauseFunc) {
	idle := make(chan struct{})
	go func() { _ = slots.Wait(); close(idle) }()
	select {
	case <-idle:
		return
	case <-time.After(w.cfg.ShutdownGrace):
	}
	w.log.Warn("grace period over: stopping running tasks and handing them back")
	stopTasks(ErrShutdown)
	select {
	case <-idle:
	case <-time.After(w.cfg.KillGrace + 30*time.Second):
		w.log.Error("tasks did not stop in time")
	}
}

// slot is one unit of concurrency: it asks for a task only when it can start
// it at once.
func (w *Worker) slot(pull, tasks, life context.Context) {
	wait := retry.Policy{Initial: 100 * time.Millisecond, Max: 2 * time.Second}.NewBackoff()
	failures := 0
	for pull.Err() == nil {
		d, err := w.ports.Source.Next(pull, pullWait)
		if errors.Is(err, ErrNoTask) {
			continue
		}
		if err != nil {
			if pull.Err() != nil {
				return
			}
			failures++
			if failures >= 4 {
				w.log.Warn("cannot pull tasks", "err", err)
			} else {
				w.log.Debug("pull failed", "err", err)
			}
			if !retry.Sleep(pull, wait.Next()) {
				return
			}
			continue
		}
		wait.Reset()
		failures = 0
		w.handle(tasks, life, d)
	}
}

// Stats is what a worker did so far.
type Stats struct {
	// Running is how many tasks run now.
	Running int `json:"running"`
	// Concurrency is how many tasks it runs at most.
	Concurrency int `json:"concurrency"`
	// Ended counts the tasks that reached each final state here.
	Ended map[schemas.State]int64 `json:"ended"`
}

// Stats returns what the worker did so far (for discovery and metrics).
func (w *Worker) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := Stats{Running: len(w.running), Concurrency: w.cfg.Concurrency, Ended: map[schemas.State]int64{}}
	for _, s := range []schemas.State{schemas.StateSuccess, schemas.StateFailed, schemas.StateCancelled, schemas.StateTimeout} {
		st.Ended[s] = w.ended[s]
	}
	return st
}

// countEnded counts a task that reached state.
func (w *Worker) countEnded(state schemas.State) {
	w.mu.Lock()
	w.ended[state]++
	w.mu.Unlock()
}

// Cancel stops a task running on this worker. It reports whether it was here.
func (w *Worker) Cancel(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if cancel, ok := w.running[id]; ok {
		cancel(ErrCancelled)
		return true
	}
	return false
}

func (w *Worker) track(id string, cancel context.CancelCauseFunc) func() {
	w.mu.Lock()
	w.running[id] = cancel
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		delete(w.running, id)
		w.mu.Unlock()
	}
}
