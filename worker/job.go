package worker

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// JobSpec is one ansible-playbook run of a private data directory (the
// job of ansible-runner's worker stage), already checked.
type JobSpec struct {
	// Ident becomes runner_ident.
	Ident string
	// Dir is the private data directory; ProjectDir the working directory.
	Dir, ProjectDir string
	// Playbook is the playbook relative to ProjectDir, for logs.
	Playbook string
	// Args are ansible-playbook's arguments.
	Args []string
	// Env is added to the runner's base environment.
	Env map[string]string
	// Timeout and IdleTimeout stop the run (0: none).
	Timeout, IdleTimeout time.Duration
}

// JobRunner runs the jobs of private data directories (ansible-runner's
// worker stage) the way the worker runs tasks: the callback plugin for
// events, its own process group under a supervisor, SIGINT then SIGKILL
// when stopped.
type JobRunner struct {
	// AnsiblePlaybook is the executable.
	AnsiblePlaybook string
	// PluginDir holds the callback plugin (InstallCallback).
	PluginDir string
	// Supervisors, when set, supervise each run (see Supervise).
	Supervisors *Supervisors
	// KillGrace is the time between SIGINT and SIGKILL.
	KillGrace time.Duration
	// Env is the base environment of the playbook (ChildEnv of the
	// process's, typically).
	Env []string
	// AllowInventoryScripts keeps Ansible's script inventory plugin, which
	// runs executables; it is removed otherwise (see Policy).
	AllowInventoryScripts bool
}

// Run runs job until it ends, ctx ends (canceled) or its timeouts pass
// (timeout), passing each event to onEvent.
func (j *JobRunner) Run(ctx context.Context, job JobSpec, onEvent func([]byte)) (int, string, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if job.Timeout > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeoutCause(ctx, job.Timeout, ErrTimeout)
		defer stop()
	}
	idle := newIdleTimer(job.IdleTimeout, func() { cancel(ErrTimeout) })
	defer idle.stop()
	p := &Process{
		Executable: j.AnsiblePlaybook, Args: job.Args, Dir: job.ProjectDir, Env: j.env(job),
		PluginDir: j.PluginDir, Ident: job.Ident, KillGrace: j.KillGrace, Supervisors: j.Supervisors,
		Color: true, // as ansible-runner's events
		OnEvent: func(ev *schemas.Event) {
			idle.reset()
			if b, err := json.Marshal(ev); err == nil {
				onEvent(b)
			}
		},
	}
	exit, err := p.Run(ctx)
	if err != nil {
		return exit.RC, schemas.RunnerFailed, err
	}
	switch {
	case exit.Stopped && errors.Is(context.Cause(ctx), ErrTimeout):
		return stoppedRC, schemas.RunnerTimeout, nil
	case exit.Stopped:
		return stoppedRC, schemas.RunnerCanceled, nil
	case exit.RC != 0:
		return exit.RC, schemas.RunnerFailed, nil
	}
	return 0, schemas.RunnerSuccessful, nil
}

// stoppedRC is the rc ansible-runner gives a run it stopped.
const stoppedRC = 254

// env is the playbook's environment: the base, the job's variables, its
// private temp directory.
func (j *JobRunner) env(job JobSpec) []string {
	return playbookEnv(j.Env, job.Env, filepath.Join(job.Dir, ".ansible-tmp"), j.AllowInventoryScripts)
}

// NewJobRunner prepares a JobRunner for the ansible-playbook executable:
// it installs the callback plugin in dataDir, with the checks of New, and
// starts a supervisor from the ansible-worker binary self ("" : none).
func NewJobRunner(ansiblePlaybook, dataDir, self string) (*JobRunner, error) {
	dir, err := ownGuard.ownFiles(dataDir)
	if err != nil {
		return nil, err
	}
	j := &JobRunner{AnsiblePlaybook: ansiblePlaybook, PluginDir: dir, KillGrace: 10 * time.Second, Env: ChildEnv(os.Environ())}
	if self != "" {
		j.Supervisors = NewSupervisors(self, 1)
	}
	return j, nil
}

// Close stops the supervisors.
func (j *JobRunner) Close() {
	if j.Supervisors != nil {
		j.Supervisors.Close()
	}
}

// idleTimer calls fire once no reset came for d (0: never).
type idleTimer struct {
	t *time.Timer
	d time.Duration
}

func newIdleTimer(d time.Duration, fire func()) *idleTimer {
	if d <= 0 {
		return &idleTimer{}
	}
	return &idleTimer{t: time.AfterFunc(d, fire), d: d}
}

func (i *idleTimer) reset() {
	if i.t != nil {
		i.t.Reset(i.d)
	}
}

func (i *idleTimer) stop() {
	if i.t != nil {
		i.t.Stop()
	}
}
