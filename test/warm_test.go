package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// stdoutOf is the text of a task's events.
func stdoutOf(t testing.TB, c *client, id string) string {
	t.Helper()
	var b strings.Builder
	for _, ev := range events(c.runnerMessages(t, id)) {
		b.WriteString(ev.Stdout + "\n")
	}
	return b.String()
}

// A git_pull that changes a role takes effect: the pull replaces the warm
// process (which may have imported what the old checkout held), the
// pulling task runs the new role, and so do the warm tasks after it.
func TestWarmStartGitPullChangesRole(t *testing.T) {
	t.Parallel()
	if os.Getenv(envTestWarmStart) == "false" {
		t.Log("warm starts are off for this run: the role must change all the same")
	}
	root := t.TempDir()
	origin, seed, checkout := filepath.Join(root, "origin.git"), filepath.Join(root, "seed"), filepath.Join(root, "checkout")
	gitIn(t, root, "init", "--bare", origin)
	gitIn(t, root, "clone", origin, seed)
	copyFile(t, filepath.Join(playbookDir(t), "inventory", "hosts"), filepath.Join(seed, "hosts"))
	role := func(version string) {
		t.Helper()
		require.NoError(t, os.MkdirAll(filepath.Join(seed, "roles", "greet", "tasks"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(seed, "roles", "greet", "tasks", "main.yml"),
			[]byte("- ansible.builtin.debug:\n    msg: \"role says "+version+"\"\n"), 0o644))
		gitIn(t, seed, "add", ".")
		gitIn(t, seed, "commit", "-m", "role "+version)
		gitIn(t, seed, "push", "origin", "HEAD:main")
	}
	require.NoError(t, os.WriteFile(filepath.Join(seed, "site.yml"),
		[]byte("- hosts: all\n  gather_facts: false\n  roles: [greet]\n"), 0o644))
	role("v1")
	gitIn(t, root, "clone", "--branch", "main", origin, checkout)

	ns := startServer(t)
	w := startWorker(t, ns.url, workerOpts{PlaybookDir: checkout})
	c := connectClient(t, ns.url)
	warm := os.Getenv(envTestWarmStart) != "false"
	readies := func() int { return strings.Count(w.logs.String(), `msg="warm process ready"`) }
	if warm {
		checkFor(t, 60*time.Second, 50*time.Millisecond, func() error {
			if readies() < 1 {
				return fmt.Errorf("no warm process yet:\n%s", w.logs.String())
			}
			return nil
		})
	}
	run := func(id string, pull bool) string {
		t.Helper()
		args := []string{"submit", "-s", ns.url, "--task-id", id, "-p", "site.yml", "-i", "hosts"}
		if pull {
			args = append(args, "--git-pull")
		}
		_, errOut, code := runCLI(t, args...)
		require.Equal(t, 0, code, errOut)
		st := c.waitFinal(t, "production", id, 60*time.Second)
		require.Equal(t, schemas.StateSuccess, st.State, "%s\n%s", st.Err(), w.logs.String())
		return stdoutOf(t, c, id)
	}
	require.Contains(t, run("role-1", false), "role says v1")
	role("v2")
	require.Contains(t, run("role-2", true), "role says v2", "the pulled role runs")
	if warm {
		require.Regexp(t, `msg="warm process replaced".* why="git pull"`, w.logs.String())
		checkFor(t, 60*time.Second, 50*time.Millisecond, func() error {
			if readies() < 2 {
				return fmt.Errorf("no new warm process after the pull:\n%s", w.logs.String())
			}
			return nil
		})
	}
	require.Contains(t, run("role-3", false), "role says v2")
	require.Equal(t, fmt.Sprintf("warm_start=%v", warm), finishedLine(w.logs.String(), "role-3")[1])
}

// finishedLine is the "task finished" log line of a task, and its
// warm_start field.
func finishedLine(logs, id string) [2]string {
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `msg="task finished"`) && strings.Contains(l, "task_id="+id+" ") {
			i := strings.Index(l, "warm_start=")
			if i < 0 {
				return [2]string{l, ""}
			}
			return [2]string{l, strings.Fields(l[i:])[0]}
		}
	}
	return [2]string{}
}
