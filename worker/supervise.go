package worker

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SuperviseArg, as the first argument of the ansible-worker binary, makes it
// a playbook supervisor: `ansible-worker __supervise -- ansible-playbook ...`.
const SuperviseArg = "__supervise"

// Supervise runs argv and guarantees that no process it starts outlives it:
//
//   - it is a child subreaper, so descendants that daemonize (an SSH
//     ControlPersist master, an async task) are re-parented to it, whatever
//     process group or session they moved to;
//   - when the playbook exits, and when the worker that started it dies
//     (its parent-death signal is SIGTERM), it kills every descendant;
//   - if it is killed itself, the playbook gets SIGKILL from the kernel.
//
// SIGINT is left to the playbook (the worker sends it to the whole process
// group). It returns the exit code to exit with: the playbook's, or 128+n
// when a signal n ended it.
func Supervise(argv []string) int {
	if len(argv) > 0 && argv[0] == "--" {
		argv = argv[1:]
	}
	if len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "ansible-worker "+SuperviseArg+": nothing to run")
		return 2
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "ansible-worker "+SuperviseArg+": subreaper:", err)
	}
	sigs := make(chan os.Signal, 4)
	// Caught, not ignored: an ignored signal would stay ignored in the
	// playbook after exec.
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if _, err := unix.FcntlInt(eventFD, unix.F_GETFD, 0); err == nil {
		cmd.ExtraFiles = []*os.File{os.NewFile(eventFD, "events")}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "ansible-worker: cannot start", argv[0]+":", err)
		return 127
	}
	for _, f := range cmd.ExtraFiles {
		f.Close()
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case <-done:
			killDescendants()
			return exitCode(cmd.ProcessState)
		case s := <-sigs:
			if s == syscall.SIGINT {
				continue // the playbook got it too and stops by itself
			}
			// The worker died or wants everything gone now.
			killDescendants()
			return 128 + int(s.(syscall.Signal))
		}
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

// descendants lists the processes below root, from /proc.
func descendants(root int) []int {
	children := map[int][]int{}
	entries, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, e := range entries {
		b, err := os.ReadFile(e)
		if err != nil {
			continue
		}
		pid, ppid, err := parseStat(b)
		if err != nil {
			continue
		}
		children[ppid] = append(children[ppid], pid)
	}
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

// parseStat reads pid and ppid from /proc/<pid>/stat; the command name in
// parentheses may itself contain spaces and parentheses.
func parseStat(b []byte) (pid, ppid int, err error) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return 0, 0, errors.New("malformed stat")
	}
	pid, err = strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return 0, 0, err
	}
	fields := bytes.Fields(b[end+1:])
	if len(fields) < 2 {
		return 0, 0, errors.New("malformed stat")
	}
	ppid, err = strconv.Atoi(string(fields[1]))
	return pid, ppid, err
}
