package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// intake handles a submission as soon as the stream has stored it, before
// any worker pulls it: it records the task as queued, and refuses it when
// the group's queue is full. Everything it decides is also checked when the
// task is pulled, so a submission it never sees loses nothing.
func (w *Worker) intake(sub jsbridge.Submission) { w.admit(sub, true) }

// catchUp records as queued the tasks that were submitted while no worker of
// the group listened (intake is at most once). The queue limit is not applied
// to them: they were taken in when submitted.
func (w *Worker) catchUp(ctx context.Context) {
	n := 0
	err := w.deps.Queue.EachStored(ctx, catchUpLimit, func(sub jsbridge.Submission) {
		w.admit(sub, false)
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
// when the group's queue is full.
func (w *Worker) admit(sub jsbridge.Submission, checkLimit bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := schemas.ParseTaskRequest(sub.Data)
	if err != nil {
		return // refused with its reason when pulled
	}
	log := w.log.With("task_id", req.TaskID, "seq", sub.Seq)
	owns, err := w.deps.Status.Claim(ctx, w.cfg.Names.Group, req.TaskID, sub.Seq)
	if err != nil || !owns {
		return // a duplicate is dropped, and logged, when pulled
	}
	full := ""
	if checkLimit && w.cfg.MaxQueueSize > 0 {
		waiting, err := w.deps.Queue.Waiting(ctx)
		// Waiting counts this task too while nobody has taken it.
		if err == nil && waiting > uint64(w.cfg.MaxQueueSize) {
			full = fmt.Sprintf("queue full: %d tasks of group %s were already waiting (worker.max_queue_size %d)",
				waiting-1, w.cfg.Names.Group, w.cfg.MaxQueueSize)
		}
	}
	now := time.Now()
	_, changed, err := w.deps.Status.Transition(ctx, w.cfg.Names.Group, req.TaskID,
		func(cur *schemas.TaskStatus) (*schemas.TaskStatus, bool) {
			if full == "" {
				if cur != nil {
					return nil, false
				}
				return &schemas.TaskStatus{TaskID: req.TaskID, State: schemas.StateQueued,
					CreatedAt: schemas.NewTime(sub.Stored), Output: map[string]any{}, Group: w.cfg.Names.Group}, true
			}
			if cur != nil && cur.State != schemas.StateQueued {
				return nil, false // already taken: not waiting any more
			}
			st := &schemas.TaskStatus{TaskID: req.TaskID, State: schemas.StateFailed,
				CreatedAt: schemas.NewTime(sub.Stored), CompletedAt: schemas.NewTime(now),
				Output: map[string]any{}, Group: w.cfg.Names.Group, Worker: w.cfg.WorkerID}
			st.SetError(full)
			return st, true
		})
	if err != nil {
		log.Warn("intake could not record the task", "err", err)
		return
	}
	if changed && full != "" {
		log.Warn("task refused: " + full)
	}
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
func (w *Worker) decideCancel(ctx context.Context, id string) jsbridge.CancelReply {
	r := jsbridge.CancelReply{TaskID: id}
	if err := schemas.CheckID("task id", id); err != nil {
		r.Result, r.Message = jsbridge.CancelUnknown, err.Error()
		return r
	}
	group := w.cfg.Names.Group
	now := time.Now()
	st, changed, err := w.deps.Status.Transition(ctx, group, id, func(cur *schemas.TaskStatus) (*schemas.TaskStatus, bool) {
		if cur == nil || cur.State != schemas.StateQueued {
			return nil, false
		}
		next := *cur
		next.State = schemas.StateCancelled
		next.CompletedAt = schemas.NewTime(now)
		next.SetError("cancelled before it started")
		return &next, true
	})
	if err != nil {
		r.Result, r.Message = jsbridge.CancelUnknown, "cannot read the task's status: "+err.Error()
		return r
	}
	switch {
	case st == nil:
		r.Result = jsbridge.CancelUnknown
		r.Message = fmt.Sprintf("no task %s in group %s: nothing to cancel", id, group)
		return r
	case changed:
		r.Result, r.State = jsbridge.CancelDone, string(st.State)
		r.Message = fmt.Sprintf("task %s was waiting and is cancelled; it will not run", id)
	case st.State.Final():
		r.Result, r.State, r.Worker = jsbridge.CancelFinished, string(st.State), st.Worker
		r.Message = fmt.Sprintf("task %s already finished (%s): nothing changed", id, st.State)
		return r
	default:
		r.Result, r.State, r.Worker = jsbridge.CancelStopping, string(st.State), st.Worker
		r.Message = fmt.Sprintf("task %s is running on worker %s and is being stopped", id, st.Worker)
	}
	// Recorded so that a worker that missed the request still stops or
	// skips the task.
	if err := w.deps.Status.MarkCancel(ctx, group, id); err != nil {
		w.log.Warn("cancel not recorded", "task_id", id, "err", err)
	}
	w.log.Info("cancel request", "task_id", id, "result", r.Result)
	return r
}
