//go:build unix

// The tests fake a file's owner through syscall.Stat_t, which Windows has
// not; there the owner checks only refuse (see proc_windows.go).

package worker

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// ownedInfo is a FileInfo with another owner.
type ownedInfo struct {
	fs.FileInfo
	uid uint32
}

func (o ownedInfo) Sys() any {
	st := *o.FileInfo.Sys().(*syscall.Stat_t)
	st.Uid = o.uid
	return &st
}

// strangerUID is a user that is neither the worker's nor root.
var strangerUID = uint32(os.Geteuid()) + 1

// guardSeeing is the worker's guard, except that it sees path as owned by
// uid: a fake owner, so the test needs no root and no other account.
func guardSeeing(path string, uid uint32) fileGuard {
	return fileGuard{uid: uint32(os.Geteuid()), lstat: func(p string) (fs.FileInfo, error) {
		fi, err := os.Lstat(p)
		if err != nil || p != path {
			return fi, err
		}
		return ownedInfo{fi, uid}, nil
	}}
}

// The worker creates its data directory private and uses it and the plugin
// it installs there, again and again.
func TestOwnFilesPrivate(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "cache", "ansible-worker")
	plugin, err := ownGuard.ownFiles(data)
	require.NoError(t, err)
	st, err := os.Stat(data)
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o700), st.Mode().Perm())
	require.FileExists(t, filepath.Join(plugin, CallbackPluginName+".py"))
	again, err := ownGuard.ownFiles(data)
	require.NoError(t, err)
	require.Equal(t, plugin, again)

	// Root's files are trusted, and a data directory reached through a
	// symlink is checked where it leads.
	link := filepath.Join(t.TempDir(), "link")
	require.NoError(t, os.Symlink(data, link))
	_, err = guardSeeing(data, 0).ownFiles(link)
	require.NoError(t, err)
	// A sticky directory writable by all (like /tmp) and a group-writable
	// one above it are fine.
	parent := t.TempDir()
	require.NoError(t, os.Chmod(parent, os.ModeSticky|0o777))
	_, err = ownGuard.ownFiles(filepath.Join(parent, "data"))
	require.NoError(t, err)
	require.NoError(t, os.Chmod(parent, 0o775))
	_, err = ownGuard.ownFiles(filepath.Join(parent, "data"))
	require.NoError(t, err)
}

// A data directory or plugin another local user could have written is
// refused, with the path and the reason.
func TestOwnFilesRefused(t *testing.T) {
	t.Parallel()
	install := func(t *testing.T) (data, plugin string) {
		data = filepath.Join(t.TempDir(), "data")
		plugin, err := ownGuard.ownFiles(data)
		require.NoError(t, err)
		return data, plugin
	}
	for _, tc := range []struct {
		name string
		// spoil returns the guard to check with and the path and reason the
		// error must name.
		spoil func(t *testing.T, data, plugin string) (fileGuard, string, string)
	}{
		{"data dir writable by others", func(t *testing.T, data, _ string) (fileGuard, string, string) {
			require.NoError(t, os.Chmod(data, 0o777))
			return ownGuard, data, "is writable by group or others (mode 0777"
		}},
		{"data dir writable by group", func(t *testing.T, data, _ string) (fileGuard, string, string) {
			require.NoError(t, os.Chmod(data, 0o770))
			return ownGuard, data, "is writable by group or others (mode 0770"
		}},
		{"data dir of another user", func(t *testing.T, data, _ string) (fileGuard, string, string) {
			return guardSeeing(data, strangerUID), data, "is owned by uid"
		}},
		{"parent writable by others, not sticky", func(t *testing.T, data, _ string) (fileGuard, string, string) {
			require.NoError(t, os.Chmod(filepath.Dir(data), 0o777))
			return ownGuard, filepath.Dir(data), "is writable by others and not sticky"
		}},
		{"parent of another user", func(t *testing.T, data, _ string) (fileGuard, string, string) {
			return guardSeeing(filepath.Dir(data), strangerUID), filepath.Dir(data), "is owned by uid"
		}},
		{"plugin writable by others", func(t *testing.T, _, plugin string) (fileGuard, string, string) {
			file := filepath.Join(plugin, CallbackPluginName+".py")
			require.NoError(t, os.Chmod(file, 0o666))
			return ownGuard, file, "is writable by group or others"
		}},
		{"plugin of another user", func(t *testing.T, _, plugin string) (fileGuard, string, string) {
			file := filepath.Join(plugin, CallbackPluginName+".py")
			return guardSeeing(file, strangerUID), file, "is owned by uid"
		}},
		{"plugin directory writable by group", func(t *testing.T, _, plugin string) (fileGuard, string, string) {
			require.NoError(t, os.Chmod(plugin, 0o775))
			return ownGuard, plugin, "is writable by group or others"
		}},
		{"planted plugin of another user", func(t *testing.T, _, plugin string) (fileGuard, string, string) {
			file := filepath.Join(plugin, "__pycache__", "evil.pyc")
			require.NoError(t, os.WriteFile(file, nil, 0o644))
			return guardSeeing(file, strangerUID), file, "is owned by uid"
		}},
		{"symlink in the plugin directory", func(t *testing.T, _, plugin string) (fileGuard, string, string) {
			link := filepath.Join(plugin, "other.py")
			require.NoError(t, os.Symlink("/dev/null", link))
			return ownGuard, link, "is a symbolic link"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data, plugin := install(t)
			g, path, reason := tc.spoil(t, data, plugin)
			_, err := g.ownFiles(data)
			require.Error(t, err)
			require.Contains(t, err.Error(), "not private to the worker's user")
			require.Contains(t, err.Error(), path+" "+reason)
		})
	}
}
