package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// run is one delivery of a task being worked on.
type run struct {
	w      *Worker
	d      *jsbridge.Delivery
	log    *slog.Logger
	life   context.Context
	outbox *jsbridge.Outbox
	id     string
	evSubj string
	stSubj string
	nStat  int // runner statuses published
	cancel context.CancelCauseFunc

	mu sync.Mutex
	st schemas.TaskStatus
}

func (w *Worker) handle(tasks, life context.Context, d *jsbridge.Delivery) {
	req, perr := schemas.ParseTaskRequest(d.Data())
	r := &run{
		w: w, d: d, life: life, id: req.TaskID,
		log: w.log.With("task_id", req.TaskID, "seq", d.Seq, "attempt", d.Attempt),
		st: schemas.TaskStatus{
			TaskID: req.TaskID, State: schemas.StateQueued, CreatedAt: schemas.NewTime(d.Submitted),
			Output: map[string]any{}, Group: w.cfg.Names.Group, Worker: w.cfg.WorkerID, Attempt: d.Attempt,
		},
	}
	if perr == nil {
		perr = w.cfg.Policy.Check(&req)
	}
	if perr != nil {
		r.log.Error("rejecting invalid task", "err", perr)
		if r.id != "" {
			if owns, err := w.deps.Status.Claim(life, w.cfg.Names.Group, r.id, d.Seq); err == nil && owns {
				r.start()
				r.finish(schemas.StateFailed, perr.Error(), nil)
			}
		}
		r.term(perr.Error())
		return
	}

	owns, err := w.deps.Status.Claim(life, w.cfg.Names.Group, r.id, d.Seq)
	if err != nil {
		r.log.Warn("cannot claim task, handing it back", "err", err)
		_ = d.Nak(2 * time.Second)
		return
	}
	if !owns {
		r.log.Warn("ignoring duplicate submission: this task id was already submitted")
		r.term("duplicate task_id")
		return
	}
	prev, _ := w.deps.Status.Get(life, w.cfg.Names.Group, r.id)
	if prev != nil && prev.State.Final() {
		// Cancelled or refused while waiting, or finished with its ack
		// lost: it does not run (again).
		r.log.Info("task already ended, removing it from the queue", "state", prev.State, "reason", prev.Err())
		r.ack()
		return
	}
	// Deliveries that ended in a hand-back (the worker stopped) do not count.
	if d.Attempt > w.cfg.MaxDeliver && d.Attempt-w.deps.Status.HandBacks(life, w.cfg.Names.Group, r.id) > w.cfg.MaxDeliver {
		r.start()
		r.finish(schemas.StateFailed, fmt.Sprintf("gave up after %d deliveries: the workers that took it stopped before it finished", w.cfg.MaxDeliver), nil)
		r.term("max deliveries reached")
		return
	}

	ctx, cancel := context.WithCancelCause(tasks)
	defer cancel(nil)
	r.cancel = cancel
	untrack := w.track(r.id, cancel)
	defer untrack()
	// A cancel recorded while it waited, or that came before track.
	if cancelled, _ := w.deps.Status.CancelRequested(life, w.cfg.Names.Group, r.id); cancelled {
		cancel(ErrCancelled)
	}
	r.execute(ctx, &req)
}

// start opens the outbox for the run's messages.
func (r *run) start() {
	r.outbox = r.w.deps.Publisher.NewOutbox(r.life)
	r.evSubj = jsbridge.EventSubject(r.w.cfg.SubjectID, r.id)
	r.stSubj = jsbridge.RunnerStatusSubject(r.w.cfg.SubjectID, r.id)
}

func (r *run) msgID(kind string, n int) string {
	return fmt.Sprintf("%s.%d.%d.%s%d", r.id, r.d.Seq, r.d.Attempt, kind, n)
}

func (r *run) runnerStatus(s schemas.RunnerStatus) {
	s.RunnerIdent = r.id
	b, _ := json.Marshal(s)
	r.nStat++
	r.outbox.Add(r.stSubj, r.msgID("s", r.nStat), b)
}

// putStatus stores a copy of the current status.
func (r *run) putStatus(ctx context.Context) {
	r.mu.Lock()
	st := r.st
	r.mu.Unlock()
	if err := r.w.deps.Status.Put(ctx, &st); err != nil {
		r.log.Error("status update lost", "state", st.State, "err", err)
	}
}

func (r *run) execute(ctx context.Context, req *schemas.TaskRequest) {
	w := r.w
	r.start()
	if ctx.Err() != nil {
		r.stoppedBeforeStart(ctx)
		return
	}
	now := time.Now()
	r.mu.Lock()
	r.st.State = schemas.StateRunning
	r.st.StartedAt = schemas.NewTime(now)
	r.mu.Unlock()

	timeout := w.cfg.TaskTimeout
	if req.Timeout > 0 {
		timeout = time.Duration(req.Timeout) * time.Second
	}
	if limit := w.cfg.Policy.MaxTaskTimeout; limit > 0 && (timeout == 0 || timeout > limit) {
		timeout = limit
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, timeout, ErrTimeout)
		defer cancel()
	}

	if req.GitPull {
		if err := w.gitPull(ctx); err != nil {
			r.log.Error("git pull failed", "err", err)
			r.finish(r.stopState(ctx, schemas.StateFailed), err.Error(), nil)
			r.settle(ctx)
			return
		}
	}

	// After git pull: the playbook may have just arrived.
	paths, err := w.resolve(req)
	if err != nil {
		r.log.Error("task refused", "err", err)
		r.finish(schemas.StateFailed, err.Error(), nil)
		r.term(err.Error())
		return
	}

	scratch, err := os.MkdirTemp(w.cfg.DataDir, "task-"+r.id+"-")
	if err != nil {
		r.finish(schemas.StateFailed, fmt.Sprintf("scratch directory: %v", err), nil)
		_ = r.d.Nak(5 * time.Second)
		return
	}
	defer os.RemoveAll(scratch)
	varsFile := ""
	if len(req.ExtraVars) > 0 {
		varsFile = filepath.Join(scratch, "extra_vars.yml")
		if err := WriteExtraVars(varsFile, req.ExtraVars); err != nil {
			r.finish(schemas.StateFailed, err.Error(), nil)
			r.term(err.Error())
			return
		}
	}
	args := BuildArgs(req, paths.Playbook, paths.Inventory, varsFile)
	prog := NewProgress()
	proc := &Process{
		Executable:  w.cfg.AnsiblePlaybook,
		Args:        args,
		Dir:         paths.Dir,
		Env:         w.taskEnv(scratch),
		PluginDir:   w.pluginDir,
		Ident:       r.id,
		KillGrace:   w.cfg.KillGrace,
		Supervisors: w.supervisors,
		OnEvent: func(ev *schemas.Event) {
			prog.Observe(ev)
			b, err := encodeEvent(ev, w.cfg.MaxEventBytes)
			if err != nil {
				r.log.Error("event not encodable", "counter", ev.Counter, "err", err)
				return
			}
			r.outbox.Add(r.evSubj, r.msgID("e", ev.Counter), b)
		},
	}
	r.runnerStatus(schemas.RunnerStatus{Status: schemas.RunnerStarting,
		Command: append([]string{w.cfg.AnsiblePlaybook}, args...), Cwd: paths.Dir})
	r.putStatus(ctx)
	r.runnerStatus(schemas.RunnerStatus{Status: schemas.RunnerRunning})
	r.log.Info("running playbook", "playbook", paths.Playbook, "inventory", paths.Inventory)

	hbDone := make(chan struct{})
	var hb sync.WaitGroup
	hb.Add(1)
	go func() {
		defer hb.Done()
		r.heartbeat(prog, hbDone)
	}()
	exit, err := proc.Run(ctx)
	close(hbDone)
	hb.Wait()

	counts, output, _ := prog.Snapshot()
	r.mu.Lock()
	r.st.SetCounts(counts)
	r.st.Output = output
	rc := exit.RC
	r.st.ReturnCode = &rc
	r.mu.Unlock()

	state, msg := schemas.StateSuccess, ""
	switch {
	case err != nil:
		state, msg = schemas.StateFailed, err.Error()
	case exit.Stopped:
		state = r.stopState(ctx, schemas.StateFailed)
		msg = r.stopMessage(ctx, timeout)
	case exit.RC != 0:
		state = schemas.StateFailed
		msg = fmt.Sprintf("ansible-playbook exited with code %d", exit.RC)
		if reason := prog.FailureReason(); reason != "" {
			msg = reason
		}
	}
	if state == schemas.StateQueued {
		r.handBack()
		return
	}
	r.finish(state, msg, &rc)
	r.settle(ctx)
}

// taskEnv is the environment of a playbook run: the worker's, less its
// secrets, with the operator's inventory policy.
func (w *Worker) taskEnv(scratch string) []string {
	env := append(ChildEnv(os.Environ(), w.cfg.HiddenEnv...), "ANSIBLE_LOCAL_TEMP="+filepath.Join(scratch, "tmp"))
	if kv, set := inventoryEnabled(env, w.cfg.Policy.AllowInventoryScripts); set {
		env = append(env, kv)
	}
	return env
}

// stoppedBeforeStart ends a task whose context ended before Ansible started.
func (r *run) stoppedBeforeStart(ctx context.Context) {
	state := r.stopState(ctx, schemas.StateFailed)
	if state == schemas.StateQueued {
		r.handBack()
		return
	}
	msg := r.stopMessage(ctx, 0)
	if state == schemas.StateCancelled {
		msg = "cancelled before it started"
	}
	r.finish(state, msg, nil)
	r.ack()
}

// stopState maps why ctx ended to a final state; ErrShutdown maps to queued
// (the task goes back to the queue).
func (r *run) stopState(ctx context.Context, otherwise schemas.State) schemas.State {
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, ErrTimeout):
		return schemas.StateTimeout
	case errors.Is(cause, ErrCancelled):
		return schemas.StateCancelled
	case errors.Is(cause, ErrShutdown):
		return schemas.StateQueued
	}
	return otherwise
}

func (r *run) stopMessage(ctx context.Context, timeout time.Duration) string {
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, ErrTimeout):
		return fmt.Sprintf("timed out after %s", timeout)
	case errors.Is(cause, ErrCancelled):
		return "cancelled on request"
	}
	return fmt.Sprintf("stopped: %v", context.Cause(ctx))
}

// heartbeat keeps the message alive and publishes progress while Ansible runs.
func (r *run) heartbeat(prog *Progress, done <-chan struct{}) {
	period := min(r.w.cfg.StatusInterval, r.w.cfg.AckWait/3)
	tick := time.NewTicker(period)
	defer tick.Stop()
	lastAck := time.Now()
	lastPut := time.Now()
	for {
		select {
		case <-done:
			return
		case now := <-tick.C:
			if now.Sub(lastAck) >= r.w.cfg.AckWait/3 {
				if err := r.d.InProgress(); err != nil {
					r.log.Warn("in-progress heartbeat failed", "err", err)
				} else {
					lastAck = now
				}
			}
			// Backstop for a cancel request this worker did not receive.
			if c, _ := r.w.deps.Status.CancelRequested(r.life, r.w.cfg.Names.Group, r.id); c && r.cancel != nil {
				r.cancel(ErrCancelled)
			}
			counts, output, changed := prog.Snapshot()
			// Every status_interval, and sooner when something changed.
			if !changed && now.Sub(lastPut)+period/2 < r.w.cfg.StatusInterval {
				continue
			}
			r.mu.Lock()
			r.st.SetCounts(counts)
			r.st.Output = output
			r.st.DurationSeconds = durationSince(r.st.StartedAt, now)
			r.mu.Unlock()
			r.putStatus(r.life)
			lastPut = now
		}
	}
}

func durationSince(t *schemas.Time, now time.Time) float64 {
	if t == nil {
		return 0
	}
	return float64(now.Sub(t.Time).Milliseconds()) / 1000
}

// finish publishes the final runner status after every event, then the final
// TaskStatus.
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
	r.mu.Unlock()
	if r.outbox == nil {
		r.start()
	}
	r.runnerStatus(schemas.RunnerStatus{Status: state.RunnerStatus()})
	if err := r.outbox.Close(r.life); err != nil {
		r.log.Error("some runner events were not published", "err", err)
	}
	r.putStatus(r.life)
	r.log.Info("task finished", "state", state, "return_code", derefInt(rc), "error", msg)
}

// settle acks the message now that the final state is recorded.
func (r *run) settle(context.Context) { r.ack() }

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
	if err := r.outbox.Close(r.life); err != nil {
		r.log.Error("some runner events were not published", "err", err)
	}
	r.putStatus(r.life)
	r.w.deps.Status.AddHandBack(r.life, r.w.cfg.Names.Group, r.id)
	if err := r.d.Nak(0); err != nil {
		r.log.Warn("hand back failed; the task is redelivered after the ack wait", "err", err)
	}
	r.log.Info("task handed back")
}

func derefInt(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}
