package worker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// workspace is where a run happens: the checked paths and the run's own
// scratch directory.
type workspace struct {
	Resolved
	// scratch is private to the run and removed after it.
	scratch string
	// varsFile holds the extra vars; "" when there are none.
	varsFile string
	// job is the runner job the task shipped; nil for a playbook of the
	// playbook directory.
	job RunnerJob
	// jobVarsFile holds a named job's own extra vars; "" when none.
	jobVarsFile string
}

// playbooks are the playbooks the run runs, in order.
func (ws *workspace) playbooks() []string {
	if len(ws.Playbooks) > 0 {
		return ws.Playbooks
	}
	return []string{ws.Playbook}
}

// execute runs an admitted task: workspace, command, run. Each stage
// returns the outcome that ends the delivery when it cannot go on.
func (r *run) execute(tasks context.Context) *outcome {
	ctx, cancel := context.WithCancelCause(tasks)
	defer cancel(nil)
	r.cancel = cancel
	defer r.w.track(r.id, cancel)()
	// A cancel recorded while it waited, or that came before track.
	if cancelled, _ := r.w.ports.Ledger.CancelRequested(r.life, r.w.cfg.Group, r.id); cancelled {
		cancel(ErrCancelled)
	}
	if ctx.Err() != nil {
		return r.stoppedBeforeStart(ctx)
	}
	r.mu.Lock()
	r.st.State = schemas.StateRunning
	r.st.StartedAt = schemas.NewTime(time.Now())
	r.mu.Unlock()

	timeout := r.timeout()
	r.limit = timeout
	if timeout > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeoutCause(ctx, timeout, ErrTimeout)
		defer stop()
	}
	ws, o := r.prepare(ctx)
	if o != nil {
		return o
	}
	defer os.RemoveAll(ws.scratch)
	if ws.job != nil {
		defer r.closeJob(ws.job)
		if t := ws.job.Spec().Timeout; t > 0 && (timeout == 0 || t < timeout) {
			var stop context.CancelFunc
			ctx, stop = context.WithTimeoutCause(ctx, t, ErrTimeout)
			defer stop()
			timeout, r.limit = t, t
		}
	}
	return r.runPlaybook(ctx, ws, timeout)
}

// timeout is the task's own timeout, else the worker's, bounded by
// max_task_timeout (0: none).
func (r *run) timeout() time.Duration {
	timeout := r.w.cfg.TaskTimeout
	if r.named != nil && r.named.job != nil && r.named.job.Timeout > 0 {
		timeout = time.Duration(r.named.job.Timeout) * time.Second
	}
	if r.req.Timeout > 0 {
		timeout = time.Duration(r.req.Timeout) * time.Second
	}
	if limit := r.w.cfg.Policy.MaxTaskTimeout; limit > 0 && (timeout == 0 || timeout > limit) {
		timeout = limit
	}
	return timeout
}

// prepare makes the workspace: git pull, the checked paths, the scratch
// directory and the extra vars file.
func (r *run) prepare(ctx context.Context) (*workspace, *outcome) {
	w := r.w
	if r.req.RunnerJob != nil {
		return r.prepareJob(ctx)
	}
	if r.req.GitPull {
		if err := w.gitPull(ctx); err != nil {
			r.log.Error("git pull failed", "err", err)
			o := r.stopped(ctx, schemas.StateFailed, err.Error(), nil)
			if o.state != "" {
				o.message = err.Error() // git's own words, whatever stopped it
			}
			return nil, o
		}
	}
	// After git pull: the playbook may have just arrived.
	paths, err := r.resolvePaths()
	if err != nil {
		r.log.Error("task refused", "err", err)
		return nil, refused(err.Error())
	}
	scratch, o := r.scratchDir()
	if o != nil {
		return nil, o
	}
	ws := &workspace{Resolved: paths, scratch: scratch}
	if err := r.writeVars(ws); err != nil {
		os.RemoveAll(scratch)
		return nil, refused(err.Error())
	}
	return ws, nil
}

// resolvePaths checks the playbooks and inventory of the task or its job.
func (r *run) resolvePaths() (Resolved, error) {
	if r.named != nil {
		return r.w.resolveJob(r.named.job)
	}
	return r.w.resolve(&r.req)
}

// writeVars writes the extra vars files of the task or its job.
func (r *run) writeVars(ws *workspace) error {
	if r.named != nil {
		return r.writeJobVars(ws)
	}
	if len(r.req.ExtraVars) == 0 {
		return nil
	}
	ws.varsFile = filepath.Join(ws.scratch, "extra_vars.yml")
	return WriteExtraVars(ws.varsFile, r.req.ExtraVars)
}

// command is the ansible-playbook process of the run; its events go to
// the run's sink, to prog and to onEvent.
func (r *run) command(ws *workspace, playbook string, prog *Progress, seq *eventSeq, onEvent func()) *Process {
	w := r.w
	sink := r.openSink()
	args := BuildArgs(&r.req, playbook, ws.Inventory, ws.jobVarsFile, ws.varsFile)
	dir, env, warm := ws.Dir, w.taskEnv(ws.scratch, nil), w.warm
	if ws.job != nil {
		// A shipped project has its own settings and plugins: cold.
		spec := ws.job.Spec()
		args, dir, env, warm = spec.Args, spec.ProjectDir, w.taskEnv(ws.scratch, spec.Env), nil
	}
	return &Process{
		Executable:  w.cfg.AnsiblePlaybook,
		Args:        args,
		Dir:         dir,
		Env:         env,
		PluginDir:   w.pluginDir,
		Ident:       r.id,
		KillGrace:   w.cfg.KillGrace,
		Supervisors: w.supervisors,
		Warm:        warm,
		OnEvent: func(ev *schemas.Event) {
			onEvent()
			seq.shift(ev)
			prog.Observe(ev)
			if r.named != nil && r.named.resp != nil {
				r.named.resp.line(ev)
			}
			b, err := encodeEvent(ev, w.cfg.MaxEventBytes)
			if err != nil {
				r.log.Error("event not encodable", "counter", ev.Counter, "err", err)
				return
			}
			sink.Event(ev.Counter, b)
			if ws.job != nil {
				ws.job.Event(b)
			}
		},
	}
}

// taskEnv is the environment of a playbook run: the worker's, less its
// secrets, then vars (a runner job's), then what vars cannot change: the
// run's temporary directory and the operator's inventory policy.
func (w *Worker) taskEnv(scratch string, vars map[string]string) []string {
	return playbookEnv(ChildEnv(os.Environ(), w.cfg.HiddenEnv...), vars, filepath.Join(scratch, "tmp"),
		w.cfg.Policy.AllowInventoryScripts)
}

// playbookEnv is base, vars in sorted order (so runs are reproducible),
// then ANSIBLE_LOCAL_TEMP and the inventory policy: later entries win.
func playbookEnv(base []string, vars map[string]string, localTemp string, allowScripts bool) []string {
	env := slices.Clone(base)
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		env = append(env, k+"="+vars[k])
	}
	env = append(env, "ANSIBLE_LOCAL_TEMP="+localTemp)
	if kv, set := inventoryEnabled(env, allowScripts); set {
		env = append(env, kv)
	}
	return env
}

// runPlaybook records the task as running, runs Ansible with a heartbeat,
// and returns how it ended.
func (r *run) runPlaybook(ctx context.Context, ws *workspace, timeout time.Duration) *outcome {
	prog, seq := NewProgress(), &eventSeq{}
	idle := r.idleTimer(ws)
	defer idle.stop()
	proc := r.command(ws, ws.playbooks()[0], prog, seq, idle.reset)
	if changed, err := r.record(); err != nil {
		return retryLater(fmt.Sprintf("cannot record the task as running: %v", err), storeRetryDelay)
	} else if !changed {
		r.log.Info("task ended while it was prepared (cancelled); it does not run")
		return &outcome{settle: settleAck}
	}
	r.runnerStatus(schemas.RunnerStatus{Status: schemas.RunnerStarting,
		Command: append([]string{proc.Executable}, proc.Args...), Cwd: proc.Dir})
	r.runnerStatus(schemas.RunnerStatus{Status: schemas.RunnerRunning})
	stopResponses := r.startResponses(ws)
	r.log.Info("running playbook", "playbook", ws.Playbook, "inventory", ws.Inventory)

	done := make(chan struct{})
	var hb sync.WaitGroup
	hb.Add(1)
	go func() {
		defer hb.Done()
		r.heartbeat(prog, done)
	}()
	r.w.obs.RunStarted()
	exit, err := r.runAll(ctx, ws, proc, prog, seq, idle)
	r.w.obs.RunEnded(exit.Warm)
	r.warm = exit.Warm
	close(done)
	hb.Wait()
	stopResponses()

	o := r.playbookOutcome(ctx, prog, exit, err, timeout)
	if ws.job != nil && o.state != "" {
		o = r.finishJob(ws.job, proc, o)
	}
	return o
}

// runAll runs proc, then each further playbook of a named job as long as
// the one before succeeded.
func (r *run) runAll(ctx context.Context, ws *workspace, proc *Process, prog *Progress, seq *eventSeq, idle *idleTimer) (Exit, error) {
	exit, err := r.w.execProcess(ctx, proc)
	for _, pb := range ws.playbooks()[1:] {
		if err != nil || exit.Stopped || exit.RC != 0 || ctx.Err() != nil {
			break
		}
		seq.next()
		prog.NextPlaybook()
		r.log.Info("running the job's next playbook", "playbook", pb)
		exit, err = r.w.execProcess(ctx, r.command(ws, pb, prog, seq, idle.reset))
	}
	return exit, err
}

// eventSeq numbers the events of a run's playbooks as one sequence: the
// counters and lines of each playbook after the first follow on from the
// one before, as if one ansible-playbook had run them.
type eventSeq struct {
	base, baseLine int // added to this playbook's counters and lines
	last, lastLine int // the last seen, after the shift
}

func (s *eventSeq) shift(ev *schemas.Event) {
	ev.Counter += s.base
	ev.StartLine += s.baseLine
	ev.EndLine += s.baseLine
	s.last, s.lastLine = max(s.last, ev.Counter), max(s.lastLine, ev.EndLine)
}

// next starts the numbers of the next playbook.
func (s *eventSeq) next() { s.base, s.baseLine = s.last, s.lastLine }

// playbookOutcome records the counts, output and return code of the ended
// playbook and says how the run ended.
func (r *run) playbookOutcome(ctx context.Context, prog *Progress, exit Exit, err error, timeout time.Duration) *outcome {
	counts, output, _ := prog.Snapshot()
	rc := exit.RC
	r.mu.Lock()
	r.st.SetCounts(counts)
	r.st.Output = output
	r.st.ReturnCode = &rc
	r.mu.Unlock()
	switch {
	case err != nil:
		return ended(schemas.StateFailed, err.Error(), &rc)
	case exit.Stopped:
		return r.stopped(ctx, schemas.StateFailed, r.stopMessage(ctx, timeout), &rc)
	case exit.RC != 0:
		msg := fmt.Sprintf("ansible-playbook exited with code %d", exit.RC)
		if reason := prog.FailureReason(); reason != "" {
			msg = reason
		}
		return ended(schemas.StateFailed, msg, &rc)
	}
	return ended(schemas.StateSuccess, "", &rc)
}

// stopped is the outcome of a run that ctx may have stopped: timeout,
// cancel, a hand-back at shutdown, or otherwise with msg.
func (r *run) stopped(ctx context.Context, otherwise schemas.State, msg string, rc *int) *outcome {
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, ErrShutdown):
		return &outcome{settle: settleHandBack}
	case errors.Is(cause, ErrTimeout):
		return ended(schemas.StateTimeout, r.stopMessage(ctx, r.limit), rc)
	case errors.Is(cause, ErrCancelled):
		return ended(schemas.StateCancelled, r.stopMessage(ctx, 0), rc)
	}
	return ended(otherwise, msg, rc)
}

// stoppedBeforeStart ends a task whose context ended before Ansible started.
func (r *run) stoppedBeforeStart(ctx context.Context) *outcome {
	o := r.stopped(ctx, schemas.StateFailed, r.stopMessage(ctx, 0), nil)
	if o.state == schemas.StateCancelled {
		o.message = "cancelled before it started"
	}
	return o
}

func (r *run) stopMessage(ctx context.Context, timeout time.Duration) string {
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, ErrTimeout) && cause != ErrTimeout:
		return cause.Error() // says which limit
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
	lastAck, lastPut := time.Now(), time.Now()
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
			// Every status_interval, and sooner when something changed.
			if r.progress(prog, now, now.Sub(lastPut)+period/2 >= r.w.cfg.StatusInterval) {
				lastPut = now
			}
		}
	}
}

// progress stores the running status when something changed or due is
// set; it reports whether it stored it.
func (r *run) progress(prog *Progress, now time.Time, due bool) bool {
	counts, output, changed := prog.Snapshot()
	if !changed && !due {
		return false
	}
	r.mu.Lock()
	r.st.SetCounts(counts)
	r.st.Output = output
	r.st.DurationSeconds = durationSince(r.st.StartedAt, now)
	st := r.st
	r.mu.Unlock()
	if err := r.w.ports.Ledger.Put(r.life, &st); err != nil {
		r.log.Error("status update lost", "state", st.State, "err", err)
	}
	return true
}
