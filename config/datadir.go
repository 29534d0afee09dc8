package config

import (
	"os"
	"path/filepath"
	"strconv"
)

// DefaultDataDir is the default worker.data_dir, a directory private to the
// worker's user: ansible-worker in the user's cache directory
// ($XDG_CACHE_HOME, else $HOME/.cache), or <os temp dir>/ansible-worker-<uid>
// when there is neither.
func DefaultDataDir() string {
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "ansible-worker")
	}
	return filepath.Join(os.TempDir(), "ansible-worker-"+strconv.Itoa(os.Geteuid()))
}
