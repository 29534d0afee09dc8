//go:build unix

package worker

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Supervise runs argv and guarantees that no process it starts outlives it:
//
//   - it is a child subreaper, so descendants that daemonize (an SSH
//     ControlPersist master, an async task) are re-parented to it, whatever
//     process group or session they moved to;
//   - when the playbook exits, and when the worker that started it dies
//     (its parent-death signal is SIGTERM), it kills every descendant;
//   - if it is killed itself, the playbook gets SIGKILL from the kernel.
//
// That is on Linux; on other Unix systems the first and last points and the
// parent-death signal do not hold (see proc_unix_other.go).
//
// SIGINT is left to the playbook (the worker sends it to the whole process
// group). It returns the exit code to exit with: the playbook's, or 128+n
// when a signal n ended it.
//
// With "--wait" it serves the jobs sent on the socket at fd 3, one after
// another (see Supervisors): it was started ahead of time, and each job's
// playbook runs in a process group of its own.
func Supervise(argv []string) int {
	if err := becomeSubreaper(); err != nil {
		fmt.Fprintln(os.Stderr, "ansible-worker "+SuperviseArg+": subreaper:", err)
	}
	sigs := make(chan os.Signal, 4)
	// Caught, not ignored: an ignored signal would stay ignored in the
	// playbook after exec.
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	if len(argv) > 0 && argv[0] == "--wait" {
		return serveJobs(sigs)
	}
	if len(argv) > 0 && argv[0] == "--" {
		argv = argv[1:]
	}
	if len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "ansible-worker "+SuperviseArg+": nothing to run")
		return 2
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if _, err := unix.FcntlInt(eventFD, unix.F_GETFD, 0); err == nil {
		cmd.ExtraFiles = []*os.File{os.NewFile(eventFD, "events")}
	}
	// The playbook stays in our process group: whoever started us signals it.
	cmd.SysProcAttr = procAttr(false, syscall.SIGKILL)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "ansible-worker: cannot start", cmd.Path+":", err)
		return 127
	}
	closeFiles(cmd.ExtraFiles)
	code, _ := superviseRun(cmd, sigs, nil)
	return code
}

// received is a job and its files, as a serving supervisor got them.
type received struct {
	job   job
	files []*os.File
}

// serveJobs runs the jobs sent on the socket at fd 3 one after another,
// each playbook in a process group of its own, and reports each one's pid
// and exit code (see Supervisors). It returns when the worker closes the
// socket, or kills everything when the worker goes away mid-job.
func serveJobs(sigs <-chan os.Signal) int {
	conn, err := unixConn(os.NewFile(eventFD, "supervisor-ctrl"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "ansible-worker "+SuperviseArg+":", err)
		return 2
	}
	jobs, gone := make(chan received), make(chan struct{})
	go func() {
		defer close(gone)
		for {
			var r received
			r.files, err = readMsg(conn, &r.job)
			if err != nil {
				closeFiles(r.files)
				return
			}
			jobs <- r
		}
	}()
	for {
		var r received
		select {
		case r = <-jobs:
		case <-gone:
			return 0
		case s := <-sigs:
			if s == syscall.SIGINT {
				continue
			}
			return 128 + int(s.(syscall.Signal))
		}
		if code, stop := runJob(conn, r, sigs, gone); stop {
			return code
		}
	}
}

// runJob starts one job, says its pid, supervises it and says its exit
// code. stop is set when the supervisor must end: it was told to, or the
// worker went away.
func runJob(conn *net.UnixConn, r received, sigs <-chan os.Signal, gone <-chan struct{}) (code int, stop bool) {
	defer closeFiles(r.files)
	if len(r.job.Argv) == 0 || len(r.files) == 0 {
		fmt.Fprintln(os.Stderr, "ansible-worker "+SuperviseArg+": a job without argv or output")
		return 2, true
	}
	cmd := exec.Command(r.job.Argv[0], r.job.Argv[1:]...)
	cmd.Env, cmd.Dir = r.job.Env, r.job.Dir
	cmd.Stdout, cmd.Stderr = r.files[0], r.files[0]
	cmd.ExtraFiles = r.files[1:]
	cmd.SysProcAttr = procAttr(true, syscall.SIGKILL)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(r.files[0], "ansible-worker: cannot start", cmd.Path+":", err)
		code = 127
		return code, writeMsg(conn, svReply{}) != nil || writeMsg(conn, svReply{Exit: &code}) != nil
	}
	// Only the playbook keeps the pipes open, so the worker sees EOF when
	// the playbook's processes are gone.
	closeFiles(r.files)
	if err := writeMsg(conn, svReply{PID: cmd.Process.Pid}); err != nil {
		killDescendants()
		return 1, true
	}
	if code, stop = superviseRun(cmd, sigs, gone); stop {
		return code, true
	}
	return code, writeMsg(conn, svReply{Exit: &code}) != nil
}

// superviseRun waits for the started cmd and kills what it leaves behind.
// A signal other than SIGINT (the playbook gets that one itself), or gone
// closing, kills everything at once and sets stop.
func superviseRun(cmd *exec.Cmd, sigs <-chan os.Signal, gone <-chan struct{}) (code int, stop bool) {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case <-done:
			// Orphans of the playbook are re-parented to us; with no child
			// left there is nothing to look for.
			if hasChildren() {
				killDescendants()
			}
			return exitCode(cmd.ProcessState), false
		case <-gone:
			killDescendants()
			return 1, true
		case s := <-sigs:
			if s == syscall.SIGINT {
				continue
			}
			// The worker died or wants everything gone now.
			killDescendants()
			return 128 + int(s.(syscall.Signal)), true
		}
	}
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return 1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// hasChildren reports whether this process has a child, running or not yet
// reaped.
func hasChildren() bool {
	var ws syscall.WaitStatus
	var ru syscall.Rusage
	for {
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, &ru)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.ECHILD:
			return false
		case pid > 0:
			continue // reaped a finished orphan; look again
		}
		return err == nil
	}
}

// killDescendants SIGKILLs every process below this one until none is left,
// reaping the orphans a subreaper inherits.
func killDescendants() {
	self := os.Getpid()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		pids := descendants(self)
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
		if len(pids) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// descendants lists the processes below root.
func descendants(root int) []int {
	children := processTree()
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}
