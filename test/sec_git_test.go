package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// gitRepos is an upstream bare repository and the seed clone commits are
// pushed from.
type gitRepos struct {
	t      *testing.T
	root   string
	origin string
	seed   string
}

// git runs git in dir and fails the test when it fails.
func (r *gitRepos) git(dir string, args ...string) {
	r.t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com",
		"-c", "init.defaultBranch=main"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(r.t, err, "git %v: %s", args, out)
}

// newGitRepos makes an upstream holding quick.yml and the inventory hosts.
func newGitRepos(t *testing.T) *gitRepos {
	t.Helper()
	root := t.TempDir()
	r := &gitRepos{t: t, root: root, origin: filepath.Join(root, "origin.git"), seed: filepath.Join(root, "seed")}
	r.git(root, "init", "--bare", r.origin)
	r.git(root, "clone", r.origin, r.seed)
	copyFile(t, filepath.Join(playbookDir(t), "inventory", "hosts"), filepath.Join(r.seed, "hosts"))
	copyFile(t, filepath.Join(playbookDir(t), "quick.yml"), filepath.Join(r.seed, "quick.yml"))
	r.git(r.seed, "add", ".")
	r.git(r.seed, "commit", "-m", "first")
	r.git(r.seed, "push", "origin", "HEAD:main")
	return r
}

// clone makes a checkout of upstream named name.
func (r *gitRepos) clone(name string) string {
	r.t.Helper()
	dir := filepath.Join(r.root, name)
	r.git(r.root, "clone", "--branch", "main", r.origin, dir)
	return dir
}

// push commits a copy of quick.yml as name upstream.
func (r *gitRepos) push(name string) {
	r.t.Helper()
	copyFile(r.t, filepath.Join(playbookDir(r.t), "quick.yml"), filepath.Join(r.seed, name))
	r.git(r.seed, "add", ".")
	r.git(r.seed, "commit", "-m", name)
	r.git(r.seed, "push", "origin", "HEAD:main")
}

// plantTraps puts programs into the checkout's hooks and configuration that
// leave a file in canaries when git runs them.
func plantTraps(t *testing.T, checkout, canaries string) {
	t.Helper()
	trap := func(path, name string) {
		script := fmt.Sprintf("#!/bin/sh\ntouch %q\n", filepath.Join(canaries, name))
		require.NoError(t, os.WriteFile(path, []byte(script), 0o755))
	}
	for _, hook := range []string{"post-merge", "post-checkout", "reference-transaction", "post-index-change", "pre-auto-gc"} {
		trap(filepath.Join(checkout, ".git", "hooks", hook), hook)
	}
	fsmonitor := filepath.Join(t.TempDir(), "fsmonitor")
	trap(fsmonitor, "fsmonitor")
	cmd := exec.Command("git", "config", "core.fsmonitor", fsmonitor)
	cmd.Dir = checkout
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
}

// canaryNames lists the files the traps left.
func canaryNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// A task's git_pull updates the checkout without running its hooks or the
// programs its configuration names (core.fsmonitor). The same traps do fire
// on a plain `git pull --ff-only`, so they are real.
func TestSecGitPullRunsNoHook(t *testing.T) {
	t.Parallel()
	r := newGitRepos(t)
	checkout, control := r.clone("checkout"), r.clone("control")
	canaries, controlCanaries := t.TempDir(), t.TempDir()
	plantTraps(t, checkout, canaries)
	plantTraps(t, control, controlCanaries)
	r.push("new.yml")

	cmd := exec.Command("git", "pull", "--ff-only")
	cmd.Dir = control
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	require.FileExists(t, filepath.Join(control, "new.yml"))
	require.Subset(t, canaryNames(t, controlCanaries), []string{"post-merge", "fsmonitor"},
		"a plain pull runs the traps")

	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{PlaybookDir: checkout})
	c := connectClient(t, ns.url)
	jsPub(t, ns.url, "ansible.production.tasks", "git-sec-1", taskJSON(t, map[string]any{
		"task_id": "git-sec-1", "playbook": "new.yml", "inventory": "hosts", "git_pull": true}))
	st := c.waitFinal(t, "production", "git-sec-1", 60*time.Second)
	require.Equal(t, schemas.StateSuccess, st.State, st.Err())
	require.FileExists(t, filepath.Join(checkout, "new.yml"), "the pull happened")
	require.Empty(t, canaryNames(t, canaries), "no hook or configured program ran")
}

// A checkout whose git directory, configuration or included configuration
// other users may write is not pulled: the task fails with the reason, and
// the playbook does not run. Once the modes are fixed, the pull works.
func TestSecGitPullRefusesUnsafeRepo(t *testing.T) {
	t.Parallel()
	r := newGitRepos(t)
	checkout := r.clone("checkout")
	included := filepath.Join(r.root, "included.gitconfig")
	require.NoError(t, os.WriteFile(included, []byte("[user]\n\tname = t\n"), 0o644))
	r.git(checkout, "config", "include.path", included)
	r.push("new.yml")

	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{PlaybookDir: checkout})
	c := connectClient(t, ns.url)
	for i, unsafe := range []struct {
		path string
		mode os.FileMode
		safe os.FileMode
	}{
		{filepath.Join(checkout, ".git", "config"), 0o666, 0o644},
		{filepath.Join(checkout, ".git"), 0o777, 0o755},
		{filepath.Join(checkout, ".git", "config"), 0o664, 0o644},
		{included, 0o646, 0o644},
	} {
		require.NoError(t, os.Chmod(unsafe.path, unsafe.mode))
		id := fmt.Sprintf("git-unsafe-%d", i)
		jsPub(t, ns.url, "ansible.production.tasks", id, taskJSON(t, map[string]any{
			"task_id": id, "playbook": "quick.yml", "inventory": "hosts", "git_pull": true}))
		st := c.waitFinal(t, "production", id, 60*time.Second)
		require.Equal(t, schemas.StateFailed, st.State)
		require.Contains(t, st.Err(), "git pull failed")
		require.Contains(t, st.Err(), fmt.Sprintf("%s is writable by group or others (mode %04o", unsafe.path, unsafe.mode))
		require.Nil(t, st.ReturnCode, "the playbook did not run")
		require.NoFileExists(t, filepath.Join(checkout, "new.yml"), "no pull")
		require.NoError(t, os.Chmod(unsafe.path, unsafe.safe))
	}

	jsPub(t, ns.url, "ansible.production.tasks", "git-safe", taskJSON(t, map[string]any{
		"task_id": "git-safe", "playbook": "new.yml", "inventory": "hosts", "git_pull": true}))
	st := c.waitFinal(t, "production", "git-safe", 60*time.Second)
	require.Equal(t, schemas.StateSuccess, st.State, st.Err())
}
