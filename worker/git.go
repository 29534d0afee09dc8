package worker

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// gitPull updates the playbook directory, one pull at a time per directory,
// bounded by GitTimeout. The error carries git's own message.
func (w *Worker) gitPull(ctx context.Context) error {
	w.gitMu.Lock()
	mu, ok := w.gitLocks[w.cfg.PlaybookDir]
	if !ok {
		mu = &sync.Mutex{}
		w.gitLocks[w.cfg.PlaybookDir] = mu
	}
	w.gitMu.Unlock()
	mu.Lock()
	defer mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, w.cfg.GitTimeout)
	defer cancel()
	// Other worker processes on this machine may share the checkout.
	unlock, err := lockFile(ctx, filepath.Join(w.cfg.PlaybookDir, ".git", "ansible-worker-pull.lock"))
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("git pull timed out after %s waiting for another pull", w.cfg.GitTimeout)
		}
		// No .git directory: let git itself say what is wrong.
	} else {
		defer unlock()
	}
	cmd := exec.CommandContext(ctx, "git", "pull", "--ff-only")
	cmd.Dir = w.cfg.PlaybookDir
	cmd.Env = append(ChildEnv(os.Environ(), w.cfg.HiddenEnv...), "GIT_TERMINAL_PROMPT=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("git pull timed out after %s", w.cfg.GitTimeout)
	}
	if err != nil {
		return fmt.Errorf("git pull failed: %s", strings.TrimSpace(out.String()))
	}
	return nil
}

// resolve checks the task's playbook and inventory and returns them as
// ansible-playbook will get them.
func (w *Worker) resolve(req *schemas.TaskRequest) (playbook, inventory string, err error) {
	playbook, err = ResolveInside(w.cfg.PlaybookDir, req.Playbook, "playbook")
	if err != nil {
		return "", "", err
	}
	if !Allowed(w.cfg.AllowPlaybooks, playbook) {
		return "", "", fmt.Errorf("playbook %q is not in worker.allow_playbooks", req.Playbook)
	}
	if req.InlineInventory() {
		return playbook, req.Inventory, nil
	}
	inventory, err = ResolveInside(w.cfg.PlaybookDir, req.Inventory, "inventory")
	if err != nil {
		return "", "", err
	}
	return playbook, inventory, nil
}

// lockFile takes an exclusive flock on path, waiting until ctx ends.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if err != syscall.EWOULDBLOCK {
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
