package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// fakeJobs are runner jobs whose opening, artifacts and removal the test
// decides and records.
type fakeJobs struct {
	mu        sync.Mutex
	spec      JobSpec
	openErr   error
	finishErr error
	events    []string
	finished  []string
	closed    int
	discarded []string
}

func (f *fakeJobs) Open(_ context.Context, id string, rj *schemas.RunnerJob) (RunnerJob, error) {
	if f.openErr != nil {
		return nil, f.openErr
	}
	return &fakeJob{f: f}, nil
}

func (f *fakeJobs) Discard(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.discarded = append(f.discarded, id)
	return nil
}

type fakeJob struct{ f *fakeJobs }

func (j *fakeJob) Spec() JobSpec { return j.f.spec }
func (j *fakeJob) Event(data []byte) {
	j.f.mu.Lock()
	defer j.f.mu.Unlock()
	j.f.events = append(j.f.events, string(data))
}
func (j *fakeJob) Finish(_ context.Context, command []string, rc int, status string) error {
	j.f.mu.Lock()
	defer j.f.mu.Unlock()
	j.f.finished = append(j.f.finished, fmt.Sprintf("%s rc=%d %s", strings.Join(command, " "), rc, status))
	return j.f.finishErr
}
func (j *fakeJob) Close() error {
	j.f.mu.Lock()
	defer j.f.mu.Unlock()
	j.f.closed++
	return nil
}

// jobLifecycle is a lifecycle whose worker allows runner jobs from jobs;
// the fake playbook run records its process and sends one event.
func jobLifecycle(t *testing.T, mod func(*Config)) (*lifecycle, *fakeJobs, *[]*Process) {
	jobs := &fakeJobs{spec: JobSpec{Ident: "rj", Dir: t.TempDir(), ProjectDir: "/pdd/project", Playbook: "site.yml",
		Args: []string{"-i", "/pdd/inventory", "site.yml"}, Env: map[string]string{"MY_VAR": "1"}}}
	lc := newLifecycle(t, func(c *Config) {
		c.Policy.AllowRunnerJobs = true
		if mod != nil {
			mod(c)
		}
	})
	lc.w.ports.RunnerJobs = jobs
	var procs []*Process
	inner := lc.w.execProcess
	lc.w.execProcess = func(ctx context.Context, p *Process) (Exit, error) {
		procs = append(procs, p)
		p.OnEvent(&schemas.Event{UUID: "u1", Counter: 1, Event: "playbook_on_start", RunnerIdent: p.Ident})
		return inner(ctx, p)
	}
	return lc, jobs, &procs
}

func runnerJobTask(id string) []byte {
	b, _ := json.Marshal(map[string]any{"task_id": id, "runner_job": map[string]any{"kwargs": map[string]any{"playbook": "site.yml"}}})
	return b
}

func TestRunnerJobRefusedUnlessTheOperatorAllowsIt(t *testing.T) {
	t.Parallel()
	lc := newLifecycle(t, nil)
	settled := lc.deliver(1, 1, runnerJobTask("rj"))
	require.Len(t, settled, 1)
	require.Contains(t, settled[0], "term invalid task: runner_job: this group does not run shipped private data directories")
	require.Contains(t, lc.ledger.status("rj").Err(), "worker.allow_runner_jobs")
	require.Zero(t, lc.runs.Load())
}

func TestRunnerJobRunsItsSpecAndShipsItsArtifacts(t *testing.T) {
	t.Parallel()
	lc, jobs, procs := jobLifecycle(t, nil)
	require.Equal(t, []string{"ack"}, lc.deliver(1, 1, runnerJobTask("rj")))
	require.Equal(t, schemas.StateSuccess, lc.ledger.status("rj").State)
	require.Len(t, *procs, 1)
	p := (*procs)[0]
	require.Equal(t, []string{"-i", "/pdd/inventory", "site.yml"}, p.Args)
	require.Equal(t, "/pdd/project", p.Dir)
	require.Contains(t, p.Env, "MY_VAR=1")
	require.Equal(t, "ANSIBLE_LOCAL_TEMP=", p.Env[len(p.Env)-2][:len("ANSIBLE_LOCAL_TEMP=")],
		"the job's variables come before what they may not change")
	require.Len(t, jobs.events, 1, "the job records the events it publishes")
	require.Contains(t, jobs.events[0], `"playbook_on_start"`)
	require.Equal(t, []string{"/bin/true -i /pdd/inventory site.yml rc=0 successful"}, jobs.finished)
	require.Equal(t, 1, jobs.closed, "the job's directory is removed")
	require.Equal(t, []string{"rj"}, jobs.discarded, "what it shipped is removed once it ended")
}

func TestRunnerJobFailedRunShipsItsArtifacts(t *testing.T) {
	t.Parallel()
	lc, jobs, _ := jobLifecycle(t, nil)
	lc.exit = Exit{RC: 2}
	require.Equal(t, []string{"ack"}, lc.deliver(1, 1, runnerJobTask("rj")))
	require.Equal(t, schemas.StateFailed, lc.ledger.status("rj").State)
	require.Equal(t, []string{"/bin/true -i /pdd/inventory site.yml rc=2 failed"}, jobs.finished)
}

func TestRunnerJobRefusedByItsChecksFailsAndIsTermed(t *testing.T) {
	t.Parallel()
	lc, jobs, _ := jobLifecycle(t, nil)
	jobs.openErr = fmt.Errorf("env/envvars: LD_PRELOAD: not allowed: %w", ErrJobRefused)
	settled := lc.deliver(1, 1, runnerJobTask("rj"))
	require.Len(t, settled, 1)
	require.Contains(t, settled[0], "term env/envvars: LD_PRELOAD: not allowed")
	require.Equal(t, schemas.StateFailed, lc.ledger.status("rj").State)
	require.Zero(t, lc.runs.Load())
	require.Equal(t, []string{"rj"}, jobs.discarded)
}

func TestRunnerJobStoreFaultRetriesLater(t *testing.T) {
	t.Parallel()
	lc, jobs, _ := jobLifecycle(t, nil)
	jobs.openErr = errors.New("object store away")
	require.Equal(t, []string{"nak 5s"}, lc.deliver(1, 1, runnerJobTask("rj")))
	require.Equal(t, []schemas.State{schemas.StateQueued}, lc.ledger.states("rj"), "nothing recorded but queued")
	require.Empty(t, jobs.discarded, "kept for the next delivery")
}

func TestRunnerJobLostArtifactsFailTheTask(t *testing.T) {
	t.Parallel()
	lc, jobs, _ := jobLifecycle(t, nil)
	jobs.finishErr = errors.New("bucket full")
	require.Equal(t, []string{"ack"}, lc.deliver(1, 1, runnerJobTask("rj")))
	st := lc.ledger.status("rj")
	require.Equal(t, schemas.StateFailed, st.State)
	require.Equal(t, "the playbook ended success but its artifacts could not be stored: bucket full", st.Err())
}

func TestRunnerJobTimeoutsOfItsSettings(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		spec func(*JobSpec)
		want string
	}{
		"job_timeout":  {func(s *JobSpec) { s.Timeout = 20 * time.Millisecond }, "timed out after 20ms"},
		"idle_timeout": {func(s *JobSpec) { s.IdleTimeout = 20 * time.Millisecond }, "task timed out: no output for 20ms (idle_timeout)"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			lc, jobs, _ := jobLifecycle(t, func(c *Config) { c.TaskTimeout = time.Hour })
			tc.spec(&jobs.spec)
			lc.block = true
			require.Equal(t, []string{"ack"}, lc.deliver(1, 1, runnerJobTask("rj")))
			st := lc.ledger.status("rj")
			require.Equal(t, schemas.StateTimeout, st.State)
			require.Equal(t, tc.want, st.Err())
			require.Equal(t, []string{"/bin/true -i /pdd/inventory site.yml rc=-1 timeout"}, jobs.finished)
		})
	}
}

func TestRunnerJobHandedBackKeepsWhatItShipped(t *testing.T) {
	t.Parallel()
	lc, jobs, _ := jobLifecycle(t, nil)
	lc.block = true
	tasks := lc.shutdownOnceRunning()
	require.Equal(t, []string{"nak 0s"}, lc.deliverIn(tasks, 1, 1, runnerJobTask("rj")))
	require.Empty(t, jobs.finished, "no artifacts for a run that goes on elsewhere")
	require.Empty(t, jobs.discarded)
	require.Equal(t, 1, jobs.closed)
}
