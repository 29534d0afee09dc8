//go:build linux

package worker

import (
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// warmSource is the warm process: Python that imports Ansible once and
// forks a child per task (see Warm).
//
//go:embed warm/ansible_worker_warm.py
var warmSource []byte

// Limits of one warm process: it is replaced after this many tasks or this
// long, whichever comes first.
const (
	warmMaxTasks = 1000
	warmMaxAge   = time.Hour
	// warmReadyTimeout bounds the imports of a starting warm process.
	warmReadyTimeout = 2 * time.Minute
)

// Warm keeps a warm process: a Python process that imported Ansible in the
// playbook directory with the environment a playbook gets, and forks a
// child per task that runs ansible-playbook's main() with the task's argv.
// A task saves the time of Python importing Ansible; it is otherwise run
// as a cold start runs it (see Process.Run): own process group, a
// supervisor that leaves nothing behind, the same pipes and signals.
//
// Ansible reads its settings when it is imported, so a warm process serves
// only tasks whose directory and environment (but for ANSIBLE_LOCAL_TEMP,
// which the child renews) are those it was started with, and it is
// replaced when a file it read may have changed (it checks before each
// fork), after a git pull (Invalidate), and after warmMaxTasks or
// warmMaxAge. A task that finds no ready warm process runs cold.
type Warm struct {
	interp  []string
	script  string
	dataDir string
	log     *slog.Logger

	mu     sync.Mutex
	cur    *zygote
	spec   *warmSpec // what the next warm process starts with
	retry  time.Time // no new start before, after a failure
	fails  int
	closed bool
}

// warmSpec is what a warm process is started with, and the key of the
// tasks it serves.
type warmSpec struct {
	exe, dir string
	env      []string
	key      string
}

// zygote is one started warm process.
type zygote struct {
	spec  *warmSpec
	cmd   *exec.Cmd
	conn  *net.UnixConn
	tmp   string
	born  time.Time
	ready chan struct{} // closed once it said whether it is usable
	ok    bool
	errs  *tailBuffer
	// mu makes requests one at a time; tasks counts them.
	mu    sync.Mutex
	tasks int
}

// NewWarm prepares warm starts of the ansible-playbook script
// ansiblePlaybook: its #! line names the Python to run. The warm process
// script is installed in dataDir.
func NewWarm(ansiblePlaybook, dataDir string, log *slog.Logger) (*Warm, error) {
	interp, err := pythonOf(ansiblePlaybook)
	if err != nil {
		return nil, err
	}
	dir, err := installFile(dataDir, "warm", "ansible_worker_warm.py", warmSource)
	if err != nil {
		return nil, fmt.Errorf("install the warm process: %w", err)
	}
	if err := ownGuard.checkTree(dir); err != nil {
		return nil, fmt.Errorf("warm process directory %s is not private to the worker's user: %w", dir, err)
	}
	return &Warm{interp: interp, script: dir + "/ansible_worker_warm.py", dataDir: dataDir, log: log}, nil
}

// Prime starts a warm process for tasks like p (its executable, directory
// and environment), so the first task finds it ready.
func (wm *Warm) Prime(p *Process) {
	wm.mu.Lock()
	defer wm.mu.Unlock()
	wm.spec = newWarmSpec(p.Executable, p.Dir, p.environ())
	wm.launch()
}

// Invalidate replaces the warm process: something it read may have
// changed (why says what).
func (wm *Warm) Invalidate(why string) {
	wm.mu.Lock()
	defer wm.mu.Unlock()
	if wm.cur == nil {
		return
	}
	wm.retire(why)
	wm.launch()
}

// Close stops the warm process; running tasks it forked go on.
func (wm *Warm) Close() {
	wm.mu.Lock()
	defer wm.mu.Unlock()
	wm.closed = true
	if wm.cur != nil {
		wm.retire("")
	}
}

func newWarmSpec(exe, dir string, env []string) *warmSpec {
	key := []string{exe, dir}
	for _, kv := range env {
		if !strings.HasPrefix(kv, "ANSIBLE_LOCAL_TEMP=") {
			key = append(key, kv)
		}
	}
	return &warmSpec{exe: exe, dir: dir, env: slices.Clone(env), key: strings.Join(key, "\x00")}
}

// start runs the playbook of p forked from the warm process; ok is false
// when there is no ready warm process for it, and the task runs cold.
func (wm *Warm) start(p *Process, env []string, out, events *os.File) (*started, bool) {
	z := wm.ready(newWarmSpec(p.Executable, p.Dir, env))
	if z == nil {
		return nil, false
	}
	st, served, err := z.fork(job{Argv: append([]string{p.Executable}, p.Args...), Env: env, Dir: p.Dir}, out, events)
	var stale staleError
	switch {
	case errors.As(err, &stale):
		wm.replace(z, "a file Ansible read changed: "+string(stale))
		return nil, false
	case err != nil:
		wm.mu.Lock()
		if wm.cur == z {
			wm.log.Warn("warm process gone; this task runs cold", "err", err)
			wm.retire("")
			wm.failed()
		}
		wm.mu.Unlock()
		return nil, false
	}
	if served >= warmMaxTasks || time.Since(z.born) >= warmMaxAge {
		wm.replace(z, fmt.Sprintf("it served %d tasks over %s", served, time.Since(z.born).Round(time.Second)))
	}
	return st, true
}

// ready returns the warm process for spec if it is ready, else nil; it
// starts one when there is none for spec.
func (wm *Warm) ready(spec *warmSpec) *zygote {
	wm.mu.Lock()
	defer wm.mu.Unlock()
	if wm.closed {
		return nil
	}
	if wm.cur != nil && wm.cur.spec.key != spec.key {
		wm.retire("a task with another directory or environment")
	}
	if wm.cur == nil {
		wm.spec = spec
		wm.launch()
		return nil
	}
	select {
	case <-wm.cur.ready:
		if wm.cur.ok {
			return wm.cur
		}
	default:
	}
	return nil
}

// replace retires z, if it is still the current one, and starts another.
func (wm *Warm) replace(z *zygote, why string) {
	wm.mu.Lock()
	defer wm.mu.Unlock()
	if wm.cur == z && !wm.closed {
		wm.retire(why)
		wm.launch()
	}
}

// retire lets the current warm process go (it exits when its socket
// closes). Callers hold mu.
func (wm *Warm) retire(why string) {
	if why != "" {
		wm.log.Info("warm process replaced", "why", why)
	}
	wm.cur.conn.Close()
	wm.cur = nil
}

// failed delays the next start: 1 s, doubling to 5 minutes.
func (wm *Warm) failed() {
	wm.fails++
	wm.retry = time.Now().Add(min(time.Second<<min(wm.fails-1, 9), 5*time.Minute))
}

// launch starts a warm process for wm.spec. Callers hold mu.
func (wm *Warm) launch() {
	if wm.closed || wm.spec == nil || time.Now().Before(wm.retry) {
		return
	}
	z, err := wm.spawn(wm.spec)
	if err != nil {
		wm.log.Warn("warm start unavailable; tasks run cold", "err", err)
		wm.failed()
		return
	}
	wm.cur = z
	go wm.await(z)
}

// spawn starts the Python process of a warm process.
func (wm *Warm) spawn(spec *warmSpec) (*zygote, error) {
	tmp, err := os.MkdirTemp(wm.dataDir, "warm-tmp-*")
	if err != nil {
		return nil, err
	}
	fds, err := socketpair()
	if err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "warm-ctrl"), os.NewFile(uintptr(fds[1]), "warm-ctrl")
	cmd := exec.Command(wm.interp[0], append(slices.Clone(wm.interp[1:]), wm.script, spec.exe)...)
	cmd.Dir = spec.dir
	cmd.Env = append(slices.Clone(spec.env), "ANSIBLE_LOCAL_TEMP="+tmp)
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.SysProcAttr = procAttr(true, syscall.SIGKILL)
	// What Python says before the script takes over its output (a crash).
	errs := &tailBuffer{max: 4096}
	cmd.Stdout, cmd.Stderr = errs, errs
	err = cmd.Start()
	theirs.Close()
	if err != nil {
		ours.Close()
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("start %s: %w", wm.interp[0], err)
	}
	conn, err := unixConn(ours)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		os.RemoveAll(tmp)
		return nil, err
	}
	return &zygote{spec: spec, cmd: cmd, conn: conn, tmp: tmp, born: time.Now(), ready: make(chan struct{}), errs: errs}, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}

// warmHello is what a warm process says once it imported Ansible.
type warmHello struct {
	Ready   bool    `json:"ready"`
	Printed string  `json:"printed"`
	Version string  `json:"version"`
	Seconds float64 `json:"seconds"`
}

// await waits for z to be ready, then for its end. One that is not
// usable stays in place, so tasks run cold without a new attempt (and log
// line) each, until Invalidate or a task with another key; one that ends
// while it serves is started again, after a delay.
func (wm *Warm) await(z *zygote) {
	var hello warmHello
	_ = z.conn.SetReadDeadline(time.Now().Add(warmReadyTimeout))
	_, err := readMsg(z.conn, &hello)
	_ = z.conn.SetReadDeadline(time.Time{})
	switch {
	case err != nil:
		_ = z.cmd.Wait()
		wm.log.Warn("warm process did not start; tasks run cold", "err", err, "output", z.errs.String())
	case hello.Printed != "" || !hello.Ready:
		// Output of the imports (warnings) would be missing from the
		// tasks' output; they run cold and show it.
		wm.log.Warn("warm start off: Ansible printed while loading; tasks run cold", "output", strings.TrimSpace(hello.Printed))
	default:
		z.ok = true
		wm.mu.Lock()
		wm.fails = 0
		wm.mu.Unlock()
		wm.log.Info("warm process ready", "pid", z.cmd.Process.Pid, "ansible", hello.Version, "import_seconds", hello.Seconds)
	}
	close(z.ready)
	if !z.ok {
		z.conn.Close()
	}
	_ = z.cmd.Wait()
	os.RemoveAll(z.tmp)
	wm.mu.Lock()
	defer wm.mu.Unlock()
	if wm.cur != z || !z.ok {
		return
	}
	wm.log.Warn("warm process ended; tasks run cold until it is back", "exit", z.cmd.ProcessState.String())
	wm.cur = nil
	wm.failed()
}

// staleError is the file a warm process found changed since it started.
type staleError string

func (e staleError) Error() string { return "stale: " + string(e) }

// warmReply is a warm process's answer to a request.
type warmReply struct {
	PID   int    `json:"pid"`
	Stale string `json:"stale"`
}

// fork asks z for a child that runs j with the task's output and event
// pipes; served counts the tasks z forked. The child's supervisor reports
// on a socket of the task's own.
func (z *zygote) fork(j job, out, events *os.File) (st *started, served int, err error) {
	fds, err := socketpair()
	if err != nil {
		return nil, 0, fmt.Errorf("socketpair: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "warm-task"), os.NewFile(uintptr(fds[1]), "warm-task")
	jc, err := unixConn(ours)
	if err != nil {
		theirs.Close()
		return nil, 0, err
	}
	r, served, err := z.request(j, out, events, theirs)
	theirs.Close()
	if err == nil && r.Stale != "" {
		err = staleError(r.Stale)
	}
	if err != nil {
		jc.Close()
		return nil, 0, err
	}
	pid, err := readPID(jc)
	if err != nil {
		jc.Close()
		return nil, 0, fmt.Errorf("warm task: %w", err)
	}
	// A supervisor that ended without saying was killed: -1, as for a
	// cold start's process a signal killed.
	wait := func() (int, error) {
		defer jc.Close()
		if code, ok := readExit(jc); ok {
			return code, nil
		}
		return -1, nil
	}
	return &started{warm: true, group: pid, sup: r.PID, wait: wait}, served, nil
}

// request sends one request and reads the answer, one at a time.
func (z *zygote) request(j job, files ...*os.File) (warmReply, int, error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	var r warmReply
	if err := writeMsg(z.conn, j, files...); err != nil {
		return r, 0, fmt.Errorf("send to the warm process: %w", err)
	}
	if _, err := readMsg(z.conn, &r); err != nil {
		return r, 0, fmt.Errorf("warm process: %w", err)
	}
	z.tasks++
	return r, z.tasks, nil
}
