package worker

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// procAttr starts a child in a process group of its own when setpgid is
// set, and has the kernel send it parentDeath when the thread that started
// it dies: nothing the worker starts outlives it, even if it is killed.
func procAttr(setpgid bool, parentDeath syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: setpgid, Pdeathsig: parentDeath}
}

// becomeSubreaper makes the orphans of this process's descendants its
// children, instead of init's, so a supervisor can find and kill them.
func becomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// socketpair returns a connected pair of Unix stream sockets, closed on
// exec from the start.
func socketpair() ([2]int, error) {
	return syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
}

// processTree maps each process to its children, from /proc.
func processTree() map[int][]int {
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
	return children
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
