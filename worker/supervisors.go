package worker

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
)

// SuperviseArg, as the first argument of the ansible-worker binary, makes it
// a playbook supervisor: `ansible-worker __supervise -- ansible-playbook ...`.
const SuperviseArg = "__supervise"

// Supervisors keeps playbook supervisors (see Supervise) started ahead of
// time, so starting a task does not wait for one to start: a supervisor is
// handed its job, and the pipes of the run, over a socket.
type Supervisors struct {
	bin string
	// env is the supervisors' environment: the one playbooks get.
	env   []string
	ready chan *supervisor
	mu    sync.Mutex
	all   map[*supervisor]bool
	wg    sync.WaitGroup
	done  bool
}

// supervisor is a started `ansible-worker __supervise --wait` waiting for its
// job on ctrl.
type supervisor struct {
	cmd  *exec.Cmd
	ctrl *os.File
}

// job is what a waiting supervisor runs.
type job struct {
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir"`
}

// NewSupervisors keeps up to n supervisors of the ansible-worker binary bin
// ready. They get the environment playbooks get, ChildEnv(os.Environ(),
// hide...): they wait, then run playbooks, so the worker's secrets must not
// be in their environment either.
func NewSupervisors(bin string, n int, hide ...string) *Supervisors {
	s := &Supervisors{bin: bin, env: ChildEnv(os.Environ(), hide...), ready: make(chan *supervisor, n),
		all: map[*supervisor]bool{}}
	for range n {
		s.refill()
	}
	return s
}

// refill starts one supervisor in the background and parks it as ready.
func (s *Supervisors) refill() {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		sv, err := s.start()
		if err != nil {
			return // take starts one itself
		}
		select {
		case s.ready <- sv:
		default:
			s.discard(sv)
		}
	}()
}

func (s *Supervisors) start() (*supervisor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return nil, errors.New("supervisors closed")
	}
	fds, err := socketpair()
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "supervisor-ctrl"), os.NewFile(uintptr(fds[1]), "supervisor-ctrl")
	cmd := exec.Command(s.bin, SuperviseArg, "--wait")
	cmd.Env = s.env
	cmd.ExtraFiles = []*os.File{theirs}
	// Its own process group, which the playbook joins; SIGTERM when the
	// worker dies makes it kill everything below it.
	cmd.SysProcAttr = procAttr(true, syscall.SIGTERM)
	err = cmd.Start()
	theirs.Close()
	if err != nil {
		ours.Close()
		return nil, fmt.Errorf("start supervisor: %w", err)
	}
	sv := &supervisor{cmd: cmd, ctrl: ours}
	s.all[sv] = true
	return sv, nil
}

// take returns a ready supervisor, starting one if none is ready. Its
// replacement is started by Replace once the run is over, so that starting
// it does not take CPU from the playbook.
func (s *Supervisors) take() (*supervisor, error) {
	var sv *supervisor
	select {
	case sv = <-s.ready:
	default:
		var err error
		if sv, err = s.start(); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	delete(s.all, sv)
	s.mu.Unlock()
	return sv, nil
}

// Replace starts a supervisor in place of one that was taken.
func (s *Supervisors) Replace() { s.refill() }

func (s *Supervisors) discard(sv *supervisor) {
	sv.ctrl.Close() // it reads EOF and exits
	_ = sv.cmd.Wait()
	s.mu.Lock()
	delete(s.all, sv)
	s.mu.Unlock()
}

// Close stops the idle supervisors.
func (s *Supervisors) Close() {
	s.mu.Lock()
	s.done = true
	idle := make([]*supervisor, 0, len(s.all))
	for sv := range s.all {
		idle = append(idle, sv)
	}
	s.mu.Unlock()
	s.wg.Wait()
	for _, sv := range idle {
		s.discard(sv)
	}
}
