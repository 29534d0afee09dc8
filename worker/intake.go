package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// intake handles a submission as soon as the stream has stored it, before
// any worker pulls it: it records the task as queued, and refuses it when
// the group's queue is full. Everything it decides is also checked when the
// task is pulled, so a submission it never sees loses nothing.
//
// Anyone who may publish can send a message on the intake subject, so it is
// acted on only once the tasks stream confirms it stored exactly that
// submission: a forged one has no effect on any task.
func (w *Worker) intake(claimed Submission) {
	ctx, cancel := context.WithTimeout(context.Background(), intakeTimeout)
	defer cancel()
	sub, err := w.ports.Source.Authentic(ctx, claimed)
	if errors.Is(err, ErrNotStored) {
		w.log.Debug("intake message ignored: it is not a submission the tasks stream stored", "seq", claimed.Seq, "err", err)
		return
	}
	if err != nil {
		w.log.Warn("intake could not check the submission; it is recorded when pulled", "seq", claimed.Seq, "err", err)
		return
	}
	w.admit(ctx, sub, true)
}

// intakeTimeout bounds the handling of one submission at intake.
const intakeTimeout = 10 * time.Second

// catchUp records as queued the tasks that were submitted while no worker of
// the group listened (intake is at most once). The queue limit is not applied
// to them: they were taken in when submitted.
func (w *Worker) catchUp(ctx context.Context) {
	n := 0
	err := w.ports.Source.EachStored(ctx, catchUpLimit, func(sub Submission) {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), intakeTimeout)
		defer cancel()
		w.admit(actx, sub, false)
		n++
	})
	if err != nil && ctx.Err() == nil {
		w.log.Warn("could not look at the tasks already queued", "err", err)
	}
	if n > 0 {
		w.log.Info("tasks already in the queue recorded", "tasks", n)
	}
}

// catchUpLimit bounds how many stored tasks catchUp looks at.
const catchUpLimit = 10000

// admit records a stored submission as queued; with checkLimit it refuses it
// when the group's queue is full. sub must come from the tasks stream.
func (w *Worker) admit(ctx context.Context, sub Submission, checkLimit bool) {
	pr, err := schemas.ParseRequest(sub.Data)
	req := pr.Task
	if err != nil {
		if req.TaskID == "" {
			// No status can say why: a named request's response does.
			w.respondTo(ctx, namedOf(pr), fmt.Sprintf("%d-refused", sub.Seq), schemas.ResultFailure, err.Error())
			w.dropUnreadable(ctx, sub, err)
		}
		return // one with an id is refused with its reason when pulled
	}
	owns, err := w.ports.Ledger.Claim(ctx, w.cfg.Group, req.TaskID, sub.Seq)
	if err != nil || !owns {
		return // a duplicate is dropped, and logged, when pulled
	}
	full := ""
	if checkLimit {
		full = w.queueFull(ctx)
	}
	if w.recordFirst(ctx, req.TaskID, sub, full) && full != "" {
		w.respondTo(ctx, namedOf(pr), fmt.Sprintf("%d-refused", sub.Seq), schemas.ResultFailure, full)
	}
}

// queueFull returns why a submission just stored is refused, or "" when the
// group's queue has room for it.
func (w *Worker) queueFull(ctx context.Context) string {
	if w.cfg.MaxQueueSize <= 0 {
		return ""
	}
	if w.queue.room(uint64(w.cfg.MaxQueueSize), time.Now()) {
		return ""
	}
	waiting, err := w.ports.Source.Waiting(ctx)
	if err == nil {
		w.queue.set(waiting, time.Now())
	}
	// Waiting counts this task too while nobody has taken it.
	if err != nil || waiting <= uint64(w.cfg.MaxQueueSize) {
		return ""
	}
	return fmt.Sprintf("queue full: %d tasks of group %s were already waiting (worker.max_queue_size %d)",
		waiting-1, w.cfg.Group, w.cfg.MaxQueueSize)
}

// queueBound spares a consumer info request per submission while the
// queue is far from full: the count read last, plus the submissions this
// worker took in since (tasks only leave the queue otherwise). Other
// workers of the group take in submissions it does not see, so the count
// is trusted only briefly (queueBoundAge) and only below half the limit:
// beyond that, or when it is older, the consumer is asked again.
type queueBound struct {
	mu    sync.Mutex
	count uint64
	at    time.Time
}

// queueBoundAge is how long a count of the waiting tasks is used.
const queueBoundAge = 100 * time.Millisecond

// room reports whether one more task surely fits under limit, and counts
// it when it does.
func (b *queueBound) room(limit uint64, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.at.IsZero() || now.Sub(b.at) > queueBoundAge || 2*(b.count+1) > limit {
		return false
	}
	b.count++
	return true
}

// set records waiting, read from the consumer at now.
func (b *queueBound) set(waiting uint64, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.count, b.at = waiting, now
}

// recordFirst gives the task its first status: queued, or failed with full
// when full is not "". A task that has a status already keeps it, so seeing
// the same submission again (a copy of its intake message, catchUp) changes
// nothing. It reports whether it stored the status.
func (w *Worker) recordFirst(ctx context.Context, id string, sub Submission, full string) bool {
	now := time.Now()
	_, changed, err := w.ports.Ledger.Transition(ctx, w.cfg.Group, id,
		func(cur *schemas.TaskStatus) (*schemas.TaskStatus, bool) {
			if cur != nil {
				return nil, false
			}
			st := &schemas.TaskStatus{TaskID: id, State: schemas.StateQueued,
				CreatedAt: schemas.NewTime(sub.Stored), Output: map[string]any{}, Group: w.cfg.Group}
			if full != "" {
				st.State, st.CompletedAt, st.Worker = schemas.StateFailed, schemas.NewTime(now), w.cfg.WorkerID
				st.SetError(full)
			}
			return st, true
		})
	log := w.log.With("task_id", id, "seq", sub.Seq)
	if err != nil {
		log.Warn("intake could not record the task", "err", err)
		return false
	}
	if changed && full != "" {
		log.Warn("task refused: " + full)
	}
	return changed
}

// dropUnreadable removes from the queue a submission whose task id cannot be
// read. It can never get a status, and while it waited to be pulled it
// would count toward worker.max_queue_size.
func (w *Worker) dropUnreadable(ctx context.Context, sub Submission, why error) {
	log := w.log.With("seq", sub.Seq, "bytes", len(sub.Data))
	if err := w.ports.Source.Remove(ctx, sub.Seq); err != nil {
		log.Warn("could not remove a submission without a readable task id", "err", err)
		return
	}
	log.Warn("submission refused and removed from the queue: no task id can be read", "reason", clip(why.Error(), maxReasonLog))
}

// maxReasonLog bounds the reasons logged for refused submissions: they may
// quote parts of the message.
const maxReasonLog = 200

// clip shortens s to at most n bytes, on a character boundary, marking the
// cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// cancelLocal stops the task if it runs on this worker.
func (w *Worker) cancelLocal(id string) {
	if w.Cancel(id) {
		w.log.Info("cancelling running task", "task_id", id)
	}
}

// decideCancel answers a cancel request for the group: a waiting task is
// cancelled at once and will never run, a running one is being stopped by its
// worker, a finished or unknown one is left alone.
func (w *Worker) decideCancel(ctx context.Context, id string) schemas.CancelReply {
	r := schemas.CancelReply{TaskID: id}
	if err := schemas.CheckID("task id", id); err != nil {
		r.Result, r.Message = schemas.CancelUnknown, err.Error()
		return r
	}
	group := w.cfg.Group
	now := time.Now()
	st, changed, err := w.ports.Ledger.Transition(ctx, group, id, func(cur *schemas.TaskStatus) (*schemas.TaskStatus, bool) {
		return schemas.CancelWaiting(cur, now)
	})
	if err != nil {
		r.Result, r.Message = schemas.CancelUnknown, "cannot read the task's status: "+err.Error()
		return r
	}
	switch {
	case st == nil:
		r.Result = schemas.CancelUnknown
		r.Message = fmt.Sprintf("no task %s in group %s: nothing to cancel", id, group)
		return r
	case changed:
		r.Result, r.State = schemas.CancelDone, string(st.State)
		r.Message = fmt.Sprintf("task %s was waiting and is cancelled; it will not run", id)
	case st.State.Final():
		r.Result, r.State, r.Worker = schemas.CancelFinished, string(st.State), st.Worker
		r.Message = fmt.Sprintf("task %s already finished (%s): nothing changed", id, st.State)
		return r
	default:
		r.Result, r.State, r.Worker = schemas.CancelStopping, string(st.State), st.Worker
		r.Message = fmt.Sprintf("task %s is running on worker %s and is being stopped", id, st.Worker)
	}
	// Recorded so that a worker that missed the request still stops or
	// skips the task.
	if err := w.ports.Ledger.MarkCancel(ctx, group, id); err != nil {
		w.log.Warn("cancel not recorded", "task_id", id, "err", err)
	}
	w.log.Info("cancel request", "task_id", id, "result", r.Result)
	return r
}
