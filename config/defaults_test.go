package config

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// The default data directory is in the user's cache directory, and without
// one a directory of the temp directory named after the user, never a shared
// one.
func TestDefaultDataDir(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", "/var/cache/someone")
	require.Equal(t, "/var/cache/someone/ansible-worker", DefaultDataDir())
	require.Equal(t, "/var/cache/someone/ansible-worker", DefaultConfig().Worker.DataDir)

	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "/home/someone")
	require.Equal(t, "/home/someone/.cache/ansible-worker", DefaultDataDir())

	t.Setenv("HOME", "")
	require.Equal(t, filepath.Join(os.TempDir(), "ansible-worker-"+strconv.Itoa(os.Geteuid())), DefaultDataDir())
}
