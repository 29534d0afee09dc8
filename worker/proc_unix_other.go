//go:build unix && !linux

// Process control on macOS, the BSDs and other Unix systems. Two Linux
// guarantees are missing, so it is weaker:
//
//   - no parent-death signal: when the worker is killed (SIGKILL, a crash),
//     the kernel does not kill its children. A supervisor and its playbook
//     run on until the playbook ends, its output going nowhere; the
//     supervisor then kills what is left below it. A worker that stops
//     normally still stops them: it signals the process group, and a
//     supervisor that gets SIGTERM kills every descendant.
//   - no child subreaper: a process that daemonizes out of the playbook
//     (double fork) is re-parented to init or launchd, not to the
//     supervisor. It dies with the process group when the worker kills the
//     group, unless it also left the group (setsid).

package worker

import (
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// procAttr starts a child in a process group of its own when setpgid is
// set. parentDeath is not available here (Linux's Pdeathsig).
func procAttr(setpgid bool, parentDeath syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: setpgid}
}

// becomeSubreaper does nothing: only Linux has child subreapers. A
// supervisor then finds only the descendants that did not daemonize.
func becomeSubreaper() error { return nil }

// socketpair returns a connected pair of Unix stream sockets, closed on
// exec. Not every system has SOCK_CLOEXEC (macOS has not): ForkLock keeps
// a concurrent fork from inheriting them before CloseOnExec.
func socketpair() ([2]int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return fds, err
	}
	syscall.CloseOnExec(fds[0])
	syscall.CloseOnExec(fds[1])
	return fds, nil
}

// processTree maps each process to its children, from ps: there is no
// /proc to read.
func processTree() map[int][]int {
	ps := exec.Command("ps", "-A", "-o", "pid=", "-o", "ppid=")
	out, err := ps.Output()
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		pid, err1 := strconv.Atoi(f[0])
		ppid, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil || pid == ps.Process.Pid {
			continue // ps itself is gone already
		}
		children[ppid] = append(children[ppid], pid)
	}
	return children
}
