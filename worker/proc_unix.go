//go:build unix

package worker

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// CanRunPlaybooks returns nil where the worker can run playbooks: on every
// Unix system (see proc_unix_other.go for what is weaker outside Linux).
func CanRunPlaybooks() error { return nil }

// kill sends sig to pid, or to the process group -pid when pid is negative.
func kill(pid int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }

// lockFile takes an exclusive flock on path, waiting until ctx ends. The
// unix package has flock on more systems than syscall (Solaris).
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if err != unix.EWOULDBLOCK {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// owner returns the owner of fi.
func owner(path string, fi fs.FileInfo) (uint32, error) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("%s: no owner information", path)
	}
	return st.Uid, nil
}
