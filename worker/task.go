package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ansible-worker/ansible-worker/retry"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// settle says what becomes of a delivery's message.
type settle int

const (
	// settleAck: the task is done; the message leaves the queue.
	settleAck settle = iota
	// settleTerm: the message can never run; it leaves the queue for good.
	settleTerm
	// settleRetry: a fault of this worker or of NATS; the message is
	// redelivered after a delay and no status changes.
	settleRetry
	// settleHandBack: the worker stops; the task goes back to the queue for
	// another worker, and the delivery does not count toward max_deliver.
	settleHandBack
)

// outcome is how one delivery of a task ends. Every stage of a run returns
// one; apply carries it out, in one place.
type outcome struct {
	// state is the final state to record; "" records none.
	state   schemas.State
	message string
	rc      *int
	settle  settle
	// delay is the redelivery delay of settleRetry.
	delay time.Duration
	// reason is recorded with settleTerm ("" means message).
	reason string
}

// ended is an outcome with a final state, acked.
func ended(state schemas.State, msg string, rc *int) *outcome {
	return &outcome{state: state, message: msg, rc: rc, settle: settleAck}
}

// refused is a failed outcome whose message is removed for good.
func refused(msg string) *outcome {
	return &outcome{state: schemas.StateFailed, message: msg, settle: settleTerm}
}

// retryLater redelivers the message after delay, recording nothing.
func retryLater(why string, delay time.Duration) *outcome {
	return &outcome{message: why, settle: settleRetry, delay: delay}
}

// storeRetryDelay is how long a task waits when the ledger cannot be read.
const storeRetryDelay = 2 * time.Second

// run is one delivery of a task being worked on.
type run struct {
	// warm is true when the (last) playbook was forked from a warm process.
	warm   bool
	w      *Worker
	d      *Delivery
	log    *slog.Logger
	life   context.Context
	sink   RunSink
	id     string
	req    schemas.TaskRequest
	nStat  int // runner statuses published
	cancel context.CancelCauseFunc
	// named is set for a named-job request.
	named *named
	// limit is the run's timeout (0: none), for its message.
	limit time.Duration

	mu sync.Mutex
	st schemas.TaskStatus
}

func (w *Worker) handle(tasks, life context.Context, d *Delivery) {
	pr, perr := schemas.ParseRequest(d.Data)
	req := pr.Task
	r := &run{
		w: w, d: d, life: life, id: req.TaskID, req: req, named: namedOf(pr),
		log: w.log.With("task_id", req.TaskID, "seq", d.Seq, "attempt", d.Attempt),
		st: schemas.TaskStatus{
			TaskID: req.TaskID, State: schemas.StateQueued, CreatedAt: schemas.NewTime(d.Stored),
			Output: map[string]any{}, Group: w.cfg.Group, Worker: w.cfg.WorkerID, Attempt: d.Attempt,
		},
	}
	if perr == nil {
		perr = w.cfg.Policy.Check(&req)
	}
	if perr == nil {
		perr = r.checkRequest()
	}
	o := r.admit(perr)
	if o == nil {
		o = r.execute(tasks)
	}
	r.apply(o)
}

// admit decides whether this delivery may run: nil when it may.
func (r *run) admit(perr error) *outcome {
	ctx, w := r.life, r.w
	if perr != nil {
		return r.refuse(perr)
	}
	var owns bool
	err := r.waitForStore(func(ctx context.Context) (err error) {
		owns, err = w.ports.Ledger.Claim(ctx, w.cfg.Group, r.id, r.d.Seq)
		return err
	})
	if err != nil {
		return retryLater(fmt.Sprintf("cannot claim the task: %v", err), storeRetryDelay)
	}
	if !owns {
		r.log.Warn("ignoring duplicate submission: this task id was already submitted")
		return &outcome{settle: settleTerm, reason: "duplicate task_id"}
	}
	var prev *schemas.TaskStatus
	err = r.waitForStore(func(ctx context.Context) (err error) {
		prev, err = w.ports.Ledger.Get(ctx, w.cfg.Group, r.id)
		if errors.Is(err, ErrNoStatus) {
			return nil
		}
		return err
	})
	if err != nil {
		return retryLater(fmt.Sprintf("cannot read the task's status: %v", err), storeRetryDelay)
	}
	if prev == nil {
		// Pulled before intake recorded it: queued comes first all the
		// same, so every follower sees queued, running, then the end.
		w.recordFirst(ctx, r.id, r.d.Submission, "")
	}
	if prev != nil && prev.CreatedAt != nil {
		r.st.CreatedAt = prev.CreatedAt // as the first status said
	}
	if prev != nil && prev.State.Final() {
		// Cancelled or refused while waiting, or finished with its ack
		// lost: it does not run (again).
		r.log.Info("task already ended, removing it from the queue", "state", prev.State, "reason", prev.Err())
		return &outcome{settle: settleAck}
	}
	return r.checkDeliveries()
}

// checkDeliveries ends a task delivered more than max_deliver times;
// deliveries that ended in a hand-back (the worker stopped) do not count.
func (r *run) checkDeliveries() *outcome {
	w := r.w
	if r.d.Attempt <= w.cfg.MaxDeliver {
		return nil
	}
	var handBacks int
	err := r.waitForStore(func(ctx context.Context) (err error) {
		handBacks, err = w.ports.Ledger.HandBacks(ctx, w.cfg.Group, r.id)
		return err
	})
	if err != nil {
		return retryLater(fmt.Sprintf("cannot read the task's hand-backs: %v", err), storeRetryDelay)
	}
	if r.d.Attempt-handBacks <= w.cfg.MaxDeliver {
		return nil
	}
	return &outcome{state: schemas.StateFailed, settle: settleTerm, reason: "max deliveries reached",
		message: fmt.Sprintf("gave up after %d deliveries: the workers that took it stopped before it finished", w.cfg.MaxDeliver)}
}

// waitForStore runs the Ledger call fn until it answers, for up to
// StoreWait, keeping the delivery alive meanwhile: a retry later would be
// a new delivery, counted as an attempt and toward max_deliver although
// the task never ran.
func (r *run) waitForStore(fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(r.life, r.w.cfg.StoreWait)
	defer cancel()
	return retry.Do(ctx, retry.Policy{Initial: 200 * time.Millisecond, Max: 2 * time.Second}, fn,
		func(attempt int, err error) {
			if attempt == 1 {
				r.log.Warn("the task store does not answer; waiting", "err", err)
			}
			_ = r.d.InProgress() // only a heartbeat: a lost one costs nothing yet
		})
}

// refuse ends an invalid task: with a failed status when its id can be read
// and this submission owns it, else only by removing the message.
func (r *run) refuse(perr error) *outcome {
	r.log.Error("rejecting invalid task", "err", perr)
	if r.id != "" {
		if owns, err := r.w.ports.Ledger.Claim(r.life, r.w.cfg.Group, r.id, r.d.Seq); err == nil && owns {
			return refused(perr.Error())
		}
	}
	if r.id == "" { // no status to say why: the response does
		r.w.respondTo(r.life, r.named, fmt.Sprintf("%d-refused", r.d.Seq), schemas.ResultFailure, perr.Error())
	}
	return &outcome{settle: settleTerm, reason: perr.Error()}
}

// apply carries out an outcome: the final status (after every event of the
// run), then the message's fate.
func (r *run) apply(o *outcome) {
	switch o.settle {
	case settleHandBack:
		r.handBack()
		return
	case settleRetry:
		r.closeSink()
		r.log.Warn("task handed back for a retry", "why", o.message, "delay", o.delay)
		if err := r.d.Nak(o.delay); err != nil {
			r.log.Warn("nak failed; the task is redelivered after the ack wait", "err", err)
		}
		return
	}
	if o.state != "" {
		r.finish(o.state, o.message, o.rc)
		r.respondFinal(o.state, o.message)
		r.discardJob()
	}
	if o.settle == settleTerm {
		reason := o.reason
		if reason == "" {
			reason = o.message
		}
		r.term(reason)
		return
	}
	r.ack()
}

// openSink opens the outlet of the run's messages, once.
func (r *run) openSink() RunSink {
	if r.sink == nil {
		r.sink = r.w.ports.Sinks.Open(r.life, RunID{TaskID: r.id, Seq: r.d.Seq, Attempt: r.d.Attempt})
	}
	return r.sink
}

// closeSink delivers every message of the run.
func (r *run) closeSink() {
	if r.sink == nil {
		return
	}
	if err := r.sink.Close(r.life); err != nil {
		r.log.Error("some runner events were not published", "err", err)
	}
}

func (r *run) runnerStatus(s schemas.RunnerStatus) {
	s.RunnerIdent = r.id
	b, _ := json.Marshal(s)
	r.nStat++
	r.openSink().RunnerStatus(r.nStat, b)
}

// snapshot returns a copy of the current status.
func (r *run) snapshot() schemas.TaskStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}

// record stores the current status unless the task already has a final
// one (a cancel recorded while it waited): every state change is a
// compare-and-set. It reports whether it stored it.
func (r *run) record() (bool, error) {
	st := r.snapshot()
	_, changed, err := r.w.ports.Ledger.Transition(r.life, r.w.cfg.Group, r.id,
		func(cur *schemas.TaskStatus) (*schemas.TaskStatus, bool) {
			if cur != nil && cur.State.Final() {
				return nil, false
			}
			return &st, true
		})
	return changed, err
}

// finish publishes the final runner status after every event, then records
// the final TaskStatus.
func (r *run) finish(state schemas.State, msg string, rc *int) {
	now := time.Now()
	r.mu.Lock()
	r.st.State = state
	r.st.SetError(msg)
	if rc != nil {
		r.st.ReturnCode = rc
	}
	if r.st.StartedAt == nil {
		r.st.StartedAt = schemas.NewTime(now)
	}
	r.st.CompletedAt = schemas.NewTime(now)
	r.st.DurationSeconds = durationSince(r.st.StartedAt, now)
	took := now.Sub(r.st.StartedAt.Time)
	r.mu.Unlock()
	r.w.obs.TaskEnded(state, took)
	r.w.countEnded(state)
	r.runnerStatus(schemas.RunnerStatus{Status: state.RunnerStatus()})
	r.closeSink()
	if changed, err := r.record(); err != nil {
		r.log.Error("final status lost", "state", state, "err", err)
	} else if !changed {
		r.log.Warn("final status not recorded: the task already has one", "state", state)
	}
	r.log.Info("task finished", "state", state, "return_code", derefInt(rc), "error", msg, "warm_start", r.warm)
}

func (r *run) ack() {
	ctx, cancel := context.WithTimeout(r.life, 10*time.Second)
	defer cancel()
	if err := r.d.Ack(ctx); err != nil {
		r.log.Warn("ack failed; a redelivery will find the task finished", "err", err)
	}
}

func (r *run) term(reason string) {
	if err := r.d.Term(reason); err != nil {
		r.log.Warn("could not remove task from the queue", "err", err)
	}
}

// handBack returns a stopped task to the queue for another worker.
func (r *run) handBack() {
	r.mu.Lock()
	r.st.State = schemas.StateQueued
	r.st.SetError(fmt.Sprintf("worker %s stopped; task handed back to the queue", r.w.cfg.WorkerID))
	r.st.CompletedAt = nil
	r.mu.Unlock()
	r.closeSink()
	if _, err := r.record(); err != nil {
		r.log.Error("status update lost", "state", schemas.StateQueued, "err", err)
	}
	if err := r.w.ports.Ledger.AddHandBack(r.life, r.w.cfg.Group, r.id); err != nil {
		r.log.Warn("hand-back not counted; it may count toward max_deliver", "err", err)
	}
	if err := r.d.Nak(0); err != nil {
		r.log.Warn("hand back failed; the task is redelivered after the ack wait", "err", err)
	}
	r.log.Info("task handed back")
}

func durationSince(t *schemas.Time, now time.Time) float64 {
	if t == nil {
		return 0
	}
	return float64(now.Sub(t.Time).Milliseconds()) / 1000
}

func derefInt(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}
