package runnerstream

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// CleanupOptions configure Cleanup.
type CleanupOptions struct {
	// Pattern is a file glob of private data directories
	// ("/tmp/.ansible-runner-*").
	Pattern string
	// Grace keeps directories modified more recently than this.
	Grace time.Duration
	// Exclude keeps paths that contain any of these strings.
	Exclude []string
}

// Cleanup removes the private data directories Pattern matches, as
// ansible-runner's `worker cleanup` does: not the recently modified ones,
// not the ones whose job still runs (a live process in their pid file), and
// never a system directory. It returns the directories removed.
func Cleanup(o CleanupOptions) ([]string, error) {
	matches, err := filepath.Glob(o.Pattern)
	if err != nil {
		return nil, fmt.Errorf("--file-pattern %q: %w", o.Pattern, err)
	}
	for _, m := range matches {
		if systemDir(m) {
			return nil, fmt.Errorf("--file-pattern %q matches the system directory %s: refusing to delete anything", o.Pattern, m)
		}
	}
	var removed []string
	for _, m := range matches {
		if !cleanable(m, o) {
			continue
		}
		if err := os.RemoveAll(m); err != nil {
			return removed, fmt.Errorf("remove %s: %w", m, err)
		}
		removed = append(removed, m)
	}
	return removed, nil
}

// cleanable tells whether dir may be removed now.
func cleanable(dir string, o CleanupOptions) bool {
	for _, x := range o.Exclude {
		if x != "" && strings.Contains(dir, x) {
			return false
		}
	}
	st, err := os.Lstat(dir)
	if err != nil || !st.IsDir() {
		return false
	}
	if o.Grace > 0 && time.Since(st.ModTime()) < o.Grace {
		return false
	}
	return !jobAlive(dir)
}

// jobPID reads dir/pid; 0 when there is none.
func jobPID(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// systemDir tells the directories a pattern must never reach.
func systemDir(path string) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return true
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	for _, d := range []string{"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/mnt", "/opt",
		"/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var", os.TempDir()} {
		if abs == filepath.Clean(d) {
			return true
		}
	}
	return false
}
