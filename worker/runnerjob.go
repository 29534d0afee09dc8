package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// jobStoreTimeout bounds storing a runner job's artifacts and removing
// what it shipped, which happen after the task's own context ended.
const jobStoreTimeout = 2 * time.Minute

// prepareJob opens the runner job the task shipped: the workspace is the
// job's private data directory.
func (r *run) prepareJob(ctx context.Context) (*workspace, *outcome) {
	jobs := r.w.ports.RunnerJobs
	if jobs == nil {
		return nil, refused("runner_job: this worker cannot run shipped private data directories")
	}
	job, err := jobs.Open(ctx, r.id, r.req.RunnerJob)
	switch {
	case errors.Is(err, ErrJobRefused):
		r.log.Error("runner job refused", "err", err)
		return nil, refused(err.Error())
	case err != nil && ctx.Err() != nil:
		return nil, r.stopped(ctx, schemas.StateFailed, err.Error(), nil)
	case err != nil:
		// The store or this worker's disk: another try may do better.
		return nil, retryLater(fmt.Sprintf("runner job: %v", err), 5*time.Second)
	}
	scratch, o := r.scratchDir()
	if o != nil {
		r.closeJob(job)
		return nil, o
	}
	spec := job.Spec()
	return &workspace{Resolved: Resolved{Dir: spec.ProjectDir, Playbook: spec.Playbook}, scratch: scratch, job: job}, nil
}

// scratchDir makes the run's private scratch directory.
func (r *run) scratchDir() (string, *outcome) {
	scratch, err := os.MkdirTemp(r.w.cfg.DataDir, "task-"+r.id+"-")
	if err != nil {
		// A fault of this worker's disk: another worker may do better.
		return "", retryLater(fmt.Sprintf("scratch directory: %v", err), 5*time.Second)
	}
	return scratch, nil
}

func (r *run) closeJob(job RunnerJob) {
	if err := job.Close(); err != nil {
		r.log.Warn("runner job directory not removed", "err", err)
	}
}

// idleTimer stops a runner job that printed nothing for its idle timeout
// (env/settings idle_timeout); for other tasks it never fires.
func (r *run) idleTimer(ws *workspace) *idleTimer {
	var d time.Duration
	if ws.job != nil {
		d = ws.job.Spec().IdleTimeout
	}
	return newIdleTimer(d, func() {
		if r.cancel != nil {
			r.cancel(fmt.Errorf("%w: no output for %s (idle_timeout)", ErrTimeout, d))
		}
	})
}

// finishJob ships the artifacts of a runner job that ended with o. A
// playbook whose artifacts are lost did not fully succeed: the submitter
// waits for them.
func (r *run) finishJob(job RunnerJob, proc *Process, o *outcome) *outcome {
	ctx, cancel := context.WithTimeout(r.life, jobStoreTimeout)
	defer cancel()
	rc := -1
	if o.rc != nil {
		rc = *o.rc
	}
	command := append([]string{proc.Executable}, proc.Args...)
	err := job.Finish(ctx, command, rc, o.state.RunnerStatus())
	if err == nil {
		return o
	}
	r.log.Error("runner job artifacts not stored", "err", err)
	msg := fmt.Sprintf("the playbook ended %s but its artifacts could not be stored: %v", o.state, err)
	if o.message != "" {
		msg = o.message + "; " + msg
	}
	return ended(schemas.StateFailed, msg, o.rc)
}

// discardJob removes what a runner job shipped once its task has ended;
// the artifacts stay for the submitter.
func (r *run) discardJob() {
	jobs := r.w.ports.RunnerJobs
	if r.req.RunnerJob == nil || jobs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.life, jobStoreTimeout)
	defer cancel()
	if err := jobs.Discard(ctx, r.id); err != nil {
		r.log.Warn("shipped runner job not removed; the store's max age removes it", "err", err)
	}
}
