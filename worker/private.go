package worker

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// fileGuard checks that files the worker runs, or lets Ansible or git run,
// cannot have been written by another local user.
type fileGuard struct {
	// uid is the worker's user; it and root are trusted.
	uid uint32
	// lstat is os.Lstat.
	lstat func(string) (fs.FileInfo, error)
}

// ownGuard trusts the worker's own user and root.
var ownGuard = fileGuard{uid: uint32(os.Geteuid()), lstat: os.Lstat}

// ownedBy refuses fi when an untrusted user owns it.
func (g fileGuard) ownedBy(path string, fi fs.FileInfo) error {
	uid, err := owner(path, fi)
	if err != nil {
		return err
	}
	if uid != g.uid && uid != 0 {
		return fmt.Errorf("%s is owned by uid %d, not by the worker's user (uid %d) or root", path, uid, g.uid)
	}
	return nil
}

// private refuses path (not followed when it is a symlink) unless a trusted
// user owns it and, symlinks aside, neither group nor others may write it.
func (g fileGuard) private(path string) error {
	fi, err := g.lstat(path)
	if err != nil {
		return err
	}
	return g.privateInfo(path, fi)
}

func (g fileGuard) privateInfo(path string, fi fs.FileInfo) error {
	if err := g.ownedBy(path, fi); err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink == 0 && fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s is writable by group or others (mode %04o; chmod go-w)", path, fi.Mode().Perm())
	}
	return nil
}

// parentSafe refuses a directory above one of the worker's own: another
// user could swap what is below it when it owns it, or when others may write
// it and it is not sticky (a sticky one, like /tmp, lets only an entry's
// owner rename it).
func (g fileGuard) parentSafe(path string) error {
	fi, err := g.lstat(path)
	if err != nil {
		return err
	}
	if err := g.ownedBy(path, fi); err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink == 0 && fi.Mode().Perm()&0o002 != 0 && fi.Mode()&fs.ModeSticky == 0 {
		return fmt.Errorf("%s is writable by others and not sticky (mode %04o)", path, fi.Mode().Perm())
	}
	return nil
}

// chain checks path with private and every directory above it with
// parentSafe, as written (symlinks not followed).
func (g fileGuard) chain(path string) error {
	if err := g.private(path); err != nil {
		return err
	}
	for p := filepath.Dir(path); ; p = filepath.Dir(p) {
		if err := g.parentSafe(p); err != nil {
			return err
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// checkDataDir refuses a data directory another user could write to or swap,
// checking both the path as written and the one its symlinks lead to.
func (g fileGuard) checkDataDir(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return err
	}
	if err := g.chain(abs); err != nil {
		return err
	}
	if real != abs {
		return g.chain(real)
	}
	return nil
}

// checkTree refuses a directory tree with any entry an untrusted user owns,
// group or others may write, or that is a symlink: Ansible loads every
// plugin in it, and Python its __pycache__.
func (g fileGuard) checkTree(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s is a symbolic link", path)
		}
		fi, err := g.lstat(path)
		if err != nil {
			return err
		}
		return g.privateInfo(path, fi)
	})
}

// ownFiles creates the data directory and installs the callback plugin in
// it, refusing both when another local user could have written them: the
// plugin runs in every playbook.
func (g fileGuard) ownFiles(dataDir string) (pluginDir string, err error) {
	if err := CanRunPlaybooks(); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("worker.data_dir: %w", err)
	}
	if err := g.checkDataDir(dataDir); err != nil {
		return "", fmt.Errorf("worker.data_dir %s is not private to the worker's user: %w", dataDir, err)
	}
	pluginDir, err = InstallCallback(dataDir)
	if err != nil {
		return "", fmt.Errorf("install callback plugin: %w", err)
	}
	if err := g.checkTree(pluginDir); err != nil {
		return "", fmt.Errorf("callback plugin directory %s is not private to the worker's user: %w", pluginDir, err)
	}
	return pluginDir, nil
}
