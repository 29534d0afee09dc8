package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// gitSafety are given to git as -c options, which win over every
// configuration file: during the pull no hook runs and nothing of the
// checkout's configuration that can be turned off makes git run a program.
// What cannot be turned off (filter drivers, remote.<name>.uploadpack,
// core.sshCommand, credential helpers...) is guarded by checkGitRepo.
var gitSafety = []string{
	"core.hooksPath=/dev/null",      // post-merge, post-checkout, reference-transaction...
	"core.fsmonitor=false",          // a file system monitor program
	"protocol.ext.allow=never",      // ext:: URLs run any command
	"submodule.recurse=false",       // submodules: hooks and configuration of their own
	"fetch.recurseSubmodules=false", // the same, for the fetch
	"pull.rebase=false",             // a rebase runs more hooks (with branch.<name>.rebase: --no-rebase)
}

// gitCommand is git with gitSafety, run in dir with env, in a process group
// of its own that is killed when ctx ends.
func gitCommand(ctx context.Context, dir string, env []string, args ...string) *exec.Cmd {
	argv := make([]string, 0, 2*len(gitSafety)+len(args))
	for _, c := range gitSafety {
		argv = append(argv, "-c", c)
	}
	cmd := exec.CommandContext(ctx, "git", append(argv, args...)...)
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = procAttr(true, syscall.SIGKILL)
	cmd.Cancel = func() error { return kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// gitError is a failed git command; its message is git's own.
type gitError struct {
	err error
	msg string
}

func (e *gitError) Error() string { return e.msg }
func (e *gitError) Unwrap() error { return e.err }

// runGit runs gitCommand and returns its standard output, or an error whose
// message is git's.
func runGit(ctx context.Context, dir string, env []string, args ...string) (string, error) {
	cmd := gitCommand(ctx, dir, env, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errOut.String() + "\n" + out.String())
		if msg == "" {
			msg = "git " + args[0] + ": " + err.Error()
		}
		return out.String(), &gitError{err: err, msg: msg}
	}
	return out.String(), nil
}

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
	env := append(ChildEnv(os.Environ(), w.cfg.HiddenEnv...), "GIT_TERMINAL_PROMPT=0")
	err = checkGitRepo(ctx, w.cfg.PlaybookDir, env, ownGuard)
	if err == nil {
		_, err = runGit(ctx, w.cfg.PlaybookDir, env, "pull", "--ff-only", "--no-rebase", "--no-recurse-submodules")
	}
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("git pull timed out after %s", w.cfg.GitTimeout)
	}
	if err != nil {
		return fmt.Errorf("git pull failed: %w", err)
	}
	if w.warm != nil {
		// Ansible's configuration, plugins or collections may have come
		// with the pull: the warm process imported the old ones.
		w.warm.Invalidate("git pull")
	}
	return nil
}

// checkGitRepo refuses the repository of dir when another local user could
// have written its git directory or configuration (like git's own
// safe.directory, and the files the configuration includes too): git runs
// programs they name, and not all of them can be turned off.
func checkGitRepo(ctx context.Context, dir string, env []string, g fileGuard) error {
	out, err := runGit(ctx, dir, env, "rev-parse", "--path-format=absolute", "--git-dir", "--git-common-dir")
	if err != nil {
		return err // not a repository: git's own message
	}
	var files []string
	for _, d := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		files = append(files, d, filepath.Join(d, "config"))
	}
	out, err = runGit(ctx, dir, env, "config", "--list", "--includes", "--show-scope", "--show-origin", "-z")
	if err != nil {
		return err
	}
	files = append(files, repoConfigFiles(dir, out)...)
	slices.Sort(files)
	for _, f := range slices.Compact(files) {
		if err := g.private(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("refusing the repository of %s: %w", dir, err)
		}
	}
	return nil
}

// repoConfigFiles returns the files of the repository's own (local and
// worktree) configuration scopes in the output of git config --list
// --show-scope --show-origin -z run in dir.
func repoConfigFiles(dir, list string) []string {
	var files []string
	fields := strings.Split(list, "\x00")
	for i := 0; i+2 < len(fields); i += 3 {
		scope, origin := fields[i], fields[i+1]
		file, ok := strings.CutPrefix(origin, "file:")
		if !ok || (scope != "local" && scope != "worktree") {
			continue
		}
		if !filepath.IsAbs(file) {
			file = filepath.Join(dir, file)
		}
		files = append(files, file)
	}
	return files
}
