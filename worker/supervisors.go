package worker

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
)

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
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "supervisor-ctrl"), os.NewFile(uintptr(fds[1]), "supervisor-ctrl")
	cmd := exec.Command(s.bin, SuperviseArg, "--wait")
	cmd.Env = s.env
	cmd.ExtraFiles = []*os.File{theirs}
	// Its own process group, which the playbook joins; SIGTERM when the
	// worker dies makes it kill everything below it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
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

// send hands the job and its files (they become fds 1 and 2, then 3...)
// to the supervisor.
func (sv *supervisor) send(j job, stdout *os.File, extra []*os.File) error {
	defer sv.ctrl.Close()
	body, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("encode job: %w", err)
	}
	conn, err := net.FileConn(sv.ctrl)
	if err != nil {
		return fmt.Errorf("supervisor socket: %w", err)
	}
	defer conn.Close()
	uc := conn.(*net.UnixConn)
	fds := []int{int(stdout.Fd())}
	for _, f := range extra {
		fds = append(fds, int(f.Fd()))
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(body)))
	if _, _, err := uc.WriteMsgUnix(hdr[:], syscall.UnixRights(fds...), nil); err != nil {
		return fmt.Errorf("send job: %w", err)
	}
	if _, err := uc.Write(body); err != nil {
		return fmt.Errorf("send job: %w", err)
	}
	return nil
}

// receiveJob reads the job a waiting supervisor is given on fd ctrl. It
// returns io.EOF when the worker closed the socket without a job.
func receiveJob(ctrl int) (job, []*os.File, error) {
	var j job
	f := os.NewFile(uintptr(ctrl), "supervisor-ctrl")
	conn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return j, nil, err
	}
	defer conn.Close()
	uc := conn.(*net.UnixConn)
	var hdr [4]byte
	oob := make([]byte, syscall.CmsgSpace(8*4))
	n, oobn, _, _, err := uc.ReadMsgUnix(hdr[:], oob)
	if err != nil || n == 0 {
		if err == nil {
			err = io.EOF
		}
		return j, nil, err
	}
	if n < len(hdr) {
		if _, err := io.ReadFull(uc, hdr[n:]); err != nil {
			return j, nil, err
		}
	}
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return j, nil, fmt.Errorf("job without files: %v", err)
	}
	fds, err := syscall.ParseUnixRights(&msgs[0])
	if err != nil {
		return j, nil, err
	}
	files := make([]*os.File, len(fds))
	for i, fd := range fds {
		syscall.CloseOnExec(fd)
		files[i] = os.NewFile(uintptr(fd), fmt.Sprintf("job-fd-%d", i))
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(uc, body); err != nil {
		return j, files, err
	}
	if err := json.Unmarshal(body, &j); err != nil {
		return j, files, fmt.Errorf("decode job: %w", err)
	}
	return j, files, nil
}
