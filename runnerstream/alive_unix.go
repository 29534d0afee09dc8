//go:build unix

package runnerstream

import (
	"errors"
	"syscall"
)

// jobAlive tells whether the pid in dir/pid names a live process.
func jobAlive(dir string) bool {
	pid := jobPID(dir)
	if pid == 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
