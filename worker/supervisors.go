package worker

import (
	"errors"
	"fmt"
	"net"
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
// handed its job, and the pipes of the run, over a socket, and serves one
// job after another.
type Supervisors struct {
	bin string
	// env is the supervisors' environment: the one playbooks get.
	env   []string
	ready chan *supervisor
	mu    sync.Mutex
	wg    sync.WaitGroup
	done  bool
}

// supervisor is a started `ansible-worker __supervise --wait` serving jobs
// sent on conn.
type supervisor struct {
	cmd  *exec.Cmd
	conn *net.UnixConn
}

// job is what a waiting supervisor runs.
type job struct {
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir"`
}

// svReply is what a supervisor says of a job: its pid once it started
// (0 when it could not start), then its exit code.
type svReply struct {
	PID  int  `json:"pid,omitempty"`
	Exit *int `json:"exit,omitempty"`
}

// NewSupervisors keeps up to n supervisors of the ansible-worker binary bin
// ready. They get the environment playbooks get, ChildEnv(os.Environ(),
// hide...): they wait, then run playbooks, so the worker's secrets must not
// be in their environment either.
func NewSupervisors(bin string, n int, hide ...string) *Supervisors {
	s := &Supervisors{bin: bin, env: ChildEnv(os.Environ(), hide...), ready: make(chan *supervisor, n)}
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
		s.park(sv)
	}()
}

// park makes sv ready for a job, or stops it when enough are.
func (s *Supervisors) park(sv *supervisor) {
	select {
	case s.ready <- sv:
	default:
		s.discard(sv)
	}
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
	// Its own process group; SIGTERM when the worker dies makes it kill
	// everything below it.
	cmd.SysProcAttr = procAttr(true, syscall.SIGTERM)
	err = cmd.Start()
	theirs.Close()
	if err != nil {
		ours.Close()
		return nil, fmt.Errorf("start supervisor: %w", err)
	}
	conn, err := unixConn(ours)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, err
	}
	return &supervisor{cmd: cmd, conn: conn}, nil
}

// take returns a ready supervisor, starting one if none is ready.
func (s *Supervisors) take() (*supervisor, error) {
	select {
	case sv := <-s.ready:
		return sv, nil
	default:
		return s.start()
	}
}

// release returns sv for the next job when it reported the end of its last
// one; otherwise it is stopped and another started in its place.
func (s *Supervisors) release(sv *supervisor, reusable bool) {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if reusable && !done {
		s.park(sv)
		return
	}
	s.discard(sv)
	if !done {
		s.refill()
	}
}

func (s *Supervisors) discard(sv *supervisor) {
	sv.conn.Close() // it reads EOF and exits
	_ = sv.cmd.Wait()
}

// Close stops the idle supervisors; busy ones stop when their job ends.
func (s *Supervisors) Close() {
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
	s.wg.Wait()
	for {
		select {
		case sv := <-s.ready:
			s.discard(sv)
		default:
			return
		}
	}
}
