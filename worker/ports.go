package worker

import (
	"context"
	"errors"
	"time"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// The ports of the task lifecycle: what a Worker needs from the outside
// world, defined here where they are used. jsbridge implements them over
// NATS JetStream; the unit tests implement them with fakes.

// ErrNoTask is returned by Source.Next when no task came within the wait.
var ErrNoTask = errors.New("no task waiting")

// ErrNotStored is returned by Source.Authentic for a notice that does not
// match a submission the queue stored.
var ErrNotStored = errors.New("not a stored submission")

// Submission is a task the queue has stored, as its intake notice or a read
// of the queue gives it.
type Submission struct {
	// Seq is the message's sequence in the queue; it identifies one
	// submission across redeliveries.
	Seq uint64
	// Stored is when the queue stored it.
	Stored time.Time
	// Data is the task request.
	Data []byte
}

// Delivery is one delivery of a task to this worker.
type Delivery struct {
	Submission
	// Attempt is the delivery count, 1 for the first delivery.
	Attempt int
	// Settler ends or extends the delivery.
	Settler
}

// Settler is what a worker can do with a delivery.
type Settler interface {
	// InProgress resets the redelivery timer while the task runs.
	InProgress() error
	// Ack removes the task from the queue once the queue confirms it.
	Ack(ctx context.Context) error
	// Nak hands the task back for redelivery after delay.
	Nak(delay time.Duration) error
	// Term removes the task from the queue for good, recording why.
	Term(reason string) error
}

// Source is the group's queue of tasks.
type Source interface {
	// Next waits up to wait for one task; ErrNoTask when none came.
	Next(ctx context.Context, wait time.Duration) (*Delivery, error)
	// Waiting is how many tasks of the group wait for a worker.
	Waiting(ctx context.Context) (uint64, error)
	// EachStored calls fn with up to limit stored tasks, oldest first.
	EachStored(ctx context.Context, limit int, fn func(Submission)) error
	// Authentic returns the stored submission that a notice claims to be,
	// or ErrNotStored: anyone may forge a notice.
	Authentic(ctx context.Context, notice Submission) (Submission, error)
	// Remove deletes a stored submission.
	Remove(ctx context.Context, seq uint64) error
	// Notify calls fn with a notice of every submission stored from now
	// on, on one worker of the group, at most once.
	Notify(fn func(Submission)) (stop func(), err error)
}

// Ledger keeps the status of every task: the claim of a task id by one
// submission, the TaskStatus, cancel requests and hand-backs.
type Ledger interface {
	// Claim reports whether submission seq owns task id: true for the
	// first claim and for a redelivery, false for a duplicate.
	Claim(ctx context.Context, group, id string, seq uint64) (bool, error)
	// Get returns the task's status, or an error wrapping ErrNoStatus.
	Get(ctx context.Context, group, id string) (*schemas.TaskStatus, error)
	// Put stores a status whatever the current one is (progress updates).
	Put(ctx context.Context, st *schemas.TaskStatus) error
	// Transition changes the status with compare-and-set: change gets the
	// current status (nil when none) and returns the next one and whether
	// to store it. It returns the status after the call and whether it
	// changed.
	Transition(ctx context.Context, group, id string,
		change func(*schemas.TaskStatus) (*schemas.TaskStatus, bool)) (*schemas.TaskStatus, bool, error)
	// MarkCancel records a cancel request.
	MarkCancel(ctx context.Context, group, id string) error
	// CancelRequested reports whether a cancel request is recorded.
	CancelRequested(ctx context.Context, group, id string) (bool, error)
	// AddHandBack counts one delivery that ended in a hand-back.
	AddHandBack(ctx context.Context, group, id string) error
	// HandBacks is how many deliveries of the task ended in a hand-back.
	HandBacks(ctx context.Context, group, id string) (int, error)
}

// ErrNoStatus is wrapped by Ledger.Get for a task without a status.
var ErrNoStatus = errors.New("no status")

// CancelService answers the cancel requests of the group.
type CancelService interface {
	// Serve calls local with the id of every cancel request (on every
	// worker) and answers each request with decide (on one worker).
	Serve(local func(id string), decide func(ctx context.Context, id string) schemas.CancelReply) (stop func(), err error)
}

// RunID names one delivery of a task, for the messages of its run.
type RunID struct {
	TaskID  string
	Seq     uint64
	Attempt int
}

// Sinks open the outlet of each run's events and runner statuses.
type Sinks interface {
	Open(ctx context.Context, run RunID) RunSink
}

// RunSink takes a run's events and runner statuses, in order, without
// blocking; Close returns once every one is delivered or ctx ends.
type RunSink interface {
	Event(counter int, data []byte)
	RunnerStatus(n int, data []byte)
	Close(ctx context.Context) error
}

// RunnerJobs opens the runner jobs of the group: tasks that ship their own
// private data directory (schemas.TaskRequest.RunnerJob) instead of naming a
// playbook of the worker's directory.
type RunnerJobs interface {
	// Open fetches what task id shipped into a new private directory and
	// checks it as a job from an untrusted submitter. An error wrapping
	// ErrJobRefused means the job can never run; any other is a fault
	// worth a retry.
	Open(ctx context.Context, id string, job *schemas.RunnerJob) (RunnerJob, error)
	// Discard removes what task id shipped, once the task has ended.
	Discard(ctx context.Context, id string) error
}

// RunnerJob is one opened runner job.
type RunnerJob interface {
	// Spec is how to run it.
	Spec() JobSpec
	// Event records an event of the run, as published, for the artifacts.
	Event(data []byte)
	// Finish writes the artifacts of the ended run (its ansible-playbook
	// command, rc and ansible-runner status) and ships them back.
	Finish(ctx context.Context, command []string, rc int, status string) error
	// Close removes the job's directory.
	Close() error
}

// ErrJobRefused is wrapped by the errors that refuse a runner job for good:
// nothing shipped, a bad zip, settings the rules refuse.
var ErrJobRefused = errors.New("job refused")

// Responses keeps the answers to named-job requests (seed 003's response
// queue).
type Responses interface {
	// Respond stores one encoded response; a second one with the same id
	// is stored once.
	Respond(ctx context.Context, id string, data []byte, format schemas.RequestFormat) error
}

// Ports are the worker's connections to the outside world.
type Ports struct {
	Source  Source
	Ledger  Ledger
	Cancels CancelService
	Sinks   Sinks
	// RunnerJobs runs the tasks that ship a private data directory; nil
	// refuses them.
	RunnerJobs RunnerJobs
	// Responses answers named-job requests; nil answers none.
	Responses Responses
	// Observer is told of each run, for metrics; nil tells nobody.
	Observer Observer
}

// Observer is told what the worker does, for metrics. Its methods must
// return at once.
type Observer interface {
	// RunStarted: a playbook run of a task started.
	RunStarted()
	// RunEnded: that run ended; warm tells whether its playbook was
	// forked from a warm process.
	RunEnded(warm bool)
	// TaskEnded: a task this worker ran or refused reached final state
	// after d (from its start; 0 when it never started).
	TaskEnded(state schemas.State, d time.Duration)
}

// noObserver is the Observer of a worker without one.
type noObserver struct{}

func (noObserver) RunStarted()                            {}
func (noObserver) RunEnded(bool)                          {}
func (noObserver) TaskEnded(schemas.State, time.Duration) {}
