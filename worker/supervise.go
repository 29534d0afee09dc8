//go:build unix

package worker

import (
	"errors"
	"fmt"
	"io"
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
// With "--wait" it first waits, on the socket at fd 3, for its job and the
// files of the run (see Supervisors): it was started ahead of time.
func Supervise(argv []string) int {
	if err := becomeSubreaper(); err != nil {
		fmt.Fprintln(os.Stderr, "ansible-worker "+SuperviseArg+": subreaper:", err)
	}
	sigs := make(chan os.Signal, 4)
	// Caught, not ignored: an ignored signal would stay ignored in the
	// playbook after exec.
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)

	var cmd *exec.Cmd
	if len(argv) > 0 && argv[0] == "--wait" {
		j, files, err := receiveJob(eventFD)
		if err != nil || len(j.Argv) == 0 || len(files) == 0 {
			if err != nil && !errors.Is(err, io.EOF) {
				fmt.Fprintln(os.Stderr, "ansible-worker "+SuperviseArg+":", err)
				return 2
			}
			return 0 // not needed after all
		}
		cmd = exec.Command(j.Argv[0], j.Argv[1:]...)
		cmd.Env, cmd.Dir = j.Env, j.Dir
		cmd.Stdout, cmd.Stderr = files[0], files[0]
		cmd.ExtraFiles = files[1:]
		defer func() {
			for _, f := range files {
				f.Close()
			}
		}()
	} else {
		if len(argv) > 0 && argv[0] == "--" {
			argv = argv[1:]
		}
		if len(argv) == 0 {
			fmt.Fprintln(os.Stderr, "ansible-worker "+SuperviseArg+": nothing to run")
			return 2
		}
		cmd = exec.Command(argv[0], argv[1:]...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		if _, err := unix.FcntlInt(eventFD, unix.F_GETFD, 0); err == nil {
			cmd.ExtraFiles = []*os.File{os.NewFile(eventFD, "events")}
		}
	}
	cmd.SysProcAttr = procAttr(false, syscall.SIGKILL)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(cmd.Stderr, "ansible-worker: cannot start", cmd.Path+":", err)
		return 127
	}
	// Only the playbook keeps the pipes open, so the worker sees EOF when
	// the playbook's processes are gone.
	for _, f := range cmd.ExtraFiles {
		f.Close()
	}
	if f, ok := cmd.Stdout.(*os.File); ok && f != os.Stdout {
		f.Close()
	}
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
