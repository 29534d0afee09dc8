package jsbridge

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// storeLockFile is the file in nats.embedded.store_dir that the embedded
// server of one worker holds locked, with the worker's pid in it.
const storeLockFile = "ansible-worker.lock"

// errLocked is what lockFile returns when another process holds the lock.
var errLocked = errors.New("locked by another process")

// storeLock is the lock of a store directory, held until release.
type storeLock struct {
	f *os.File
}

// lockStore locks the store directory dir (creating it) so that no other
// worker opens the same JetStream store: a second server would take over
// the live streams' files ("stream state outdated ... will rebuild"). The
// lock file holds the pid of the worker that has it.
func lockStore(dir string) (*storeLock, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("nats.embedded.store_dir %s: %w", dir, err)
	}
	name := filepath.Join(dir, storeLockFile)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("nats.embedded.store_dir %s: %w", dir, err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("nats.embedded.store_dir %s is in use by another worker (%s): stop it, or give this worker another store_dir",
				dir, holder(name))
		}
		return nil, fmt.Errorf("locking %s: %w", name, err)
	}
	// The pid is for the message above; a failure to write it does not
	// weaken the lock.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &storeLock{f: f}, nil
}

// holder names the process whose pid is in the lock file name.
func holder(name string) string {
	data, err := os.ReadFile(name)
	if pid, perr := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && perr == nil && pid > 0 {
		return "pid " + strconv.Itoa(pid)
	}
	return "pid unknown"
}

// release unlocks the store. It may be called on a nil lock.
func (l *storeLock) release() {
	if l == nil {
		return
	}
	_ = unlockFile(l.f)
	l.f.Close()
}
