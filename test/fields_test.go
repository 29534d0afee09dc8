package test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// Every task field of the request reaches ansible-playbook: extra_vars,
// limit, tags, skip_tags, verbosity, check_mode, diff_mode and forks.
func TestTaskFieldsReachAnsible(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{})
	c := connectClient(t, ns.url)

	task := taskJSON(t, map[string]any{
		"task_id": "fields-1", "playbook": "fields.yml", "inventory": "inventory/two",
		"extra_vars": map[string]any{"greeting": "hi there"},
		"limit":      "host2", "tags": []string{"deploy"}, "skip_tags": []string{"never_me"},
		"verbosity": 2, "check_mode": true, "diff_mode": true, "forks": 3,
	})
	jsPub(t, ns.url, "ansible.production.tasks", "fields-1", task)
	st := c.waitFinal(t, "production", "fields-1", 60*time.Second)
	require.Equal(t, schemas.StateSuccess, st.State, st.Err())
	got := map[string]string{}
	for k, v := range st.Output {
		got[k] = fmt.Sprint(v)
	}
	require.Equal(t, map[string]string{"check": "true", "diff": "true", "verbosity": "2", "forks": "3",
		"host": "host2", "greeting": "hi there"}, got)

	msgs := c.runnerMessages(t, "fields-1")
	var tasks []string
	for _, ev := range events(msgs) {
		if ev.Event == "playbook_on_task_start" {
			tasks = append(tasks, taskName(t, ev))
		}
	}
	require.Equal(t, []string{"Tagged", "Report modes"}, tasks, "tags and skip_tags applied")
	require.Equal(t, 2, st.TasksTotal)
	require.Equal(t, 2, st.TasksOK, "one host only (limit)")

	var cmd []string
	for _, m := range msgs {
		if m.Status != nil && m.Status.Status == "starting" {
			cmd = m.Status.Command
		}
	}
	require.NotEmpty(t, cmd)
	line := strings.Join(cmd, " ")
	for _, want := range []string{"-i inventory/two", "--limit host2", "--tags deploy", "--skip-tags never_me",
		"-vv", "--check", "--diff", "--forks 3"} {
		require.Contains(t, line, want)
	}
	require.Equal(t, "fields.yml", cmd[len(cmd)-1], "playbook last")
	require.NotContains(t, line, "hi there", "extra vars go through a file, not the command line")
	require.Regexp(t, `-e @\S+extra_vars\.yml`, line)
}

// A task's timeout stops the playbook and ends the task "timeout".
func TestTaskTimeoutField(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{Extra: "kill_grace: 2"})
	c := connectClient(t, ns.url)

	start := time.Now()
	_, errOut, code := runCLI(t, "submit", "-s", ns.url, "--task-id", "slow-1", "-p", "slow.yml", "-i",
		"inventory/hosts", "-e", "seconds=60", "--timeout", "6") // room for Ansible to reach the task on a busy machine
	require.Equal(t, 0, code, errOut)
	st := c.waitFinal(t, "production", "slow-1", 30*time.Second)
	require.Equal(t, schemas.StateTimeout, st.State)
	require.Less(t, time.Since(start), 25*time.Second)
	require.Contains(t, st.Err(), "timed out after 6s")
	require.Equal(t, 1, st.TasksTotal, "progress up to the timeout is kept")
	msgs := c.runnerMessages(t, "slow-1")
	require.Equal(t, "timeout", msgs[len(msgs)-1].Status.Status)
}

// git_pull updates the playbook directory before the run: a playbook that
// exists only upstream runs.
func TestGitPull(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	git := func(dir string, args ...string) { gitIn(t, dir, args...) }
	origin := filepath.Join(root, "origin.git")
	git(root, "init", "--bare", origin)
	seed := filepath.Join(root, "seed")
	git(root, "clone", origin, seed)
	copyFile(t, filepath.Join(playbookDir(t), "inventory", "hosts"), filepath.Join(seed, "hosts"))
	git(seed, "add", ".")
	git(seed, "commit", "-m", "inventory")
	git(seed, "push", "origin", "HEAD:main")
	checkout := filepath.Join(root, "checkout")
	git(root, "clone", "--branch", "main", origin, checkout)
	// A playbook the worker's checkout does not have yet.
	copyFile(t, filepath.Join(playbookDir(t), "quick.yml"), filepath.Join(seed, "new.yml"))
	git(seed, "add", ".")
	git(seed, "commit", "-m", "new playbook")
	git(seed, "push", "origin", "HEAD:main")

	ns := startServer(t)
	cfg := writeConfig(t, ns.url, workerOpts{Extra: "worker_id: gitw", Concurrency: 3})
	b, err := os.ReadFile(cfg)
	require.NoError(t, err)
	b = []byte(strings.Replace(string(b), "playbook_directory: "+playbookDir(t), "playbook_directory: "+checkout, 1))
	require.NoError(t, os.WriteFile(cfg, b, 0o600))
	w := exec.Command(binary, "run", "-c", cfg)
	ready := newNotifySocket(t)
	w.Env = append(os.Environ(), ready.env())
	var logs syncBuffer
	w.Stdout, w.Stderr = &logs, &logs
	require.NoError(t, w.Start())
	exited := make(chan struct{})
	go func() { _ = w.Wait(); close(exited) }()
	t.Cleanup(func() { _ = w.Process.Signal(os.Interrupt); <-exited })
	c := connectClient(t, ns.url)
	ready.wait(t, 20*time.Second, exited, logs.String)

	_, errOut, code := runCLI(t, "submit", "-s", ns.url, "--task-id", "git-1", "-p", "new.yml", "-i", "hosts", "--git-pull")
	require.Equal(t, 0, code, errOut)
	st := c.waitFinal(t, "production", "git-1", 60*time.Second)
	require.Equal(t, schemas.StateSuccess, st.State, "%s\n%s", st.Err(), logs.String())
	require.FileExists(t, filepath.Join(checkout, "new.yml"))

	// Pulls of tasks running at once take turns instead of tripping over
	// git's own index lock.
	for i := range 3 {
		task := taskJSON(t, map[string]any{"task_id": fmt.Sprintf("git-par-%d", i), "playbook": "new.yml",
			"inventory": "hosts", "git_pull": true})
		out, err := natsCLI(t, ns.url, "pub", "ansible.production.tasks", task)
		require.NoError(t, err, out)
	}
	for i := range 3 {
		st := c.waitFinal(t, "production", fmt.Sprintf("git-par-%d", i), 60*time.Second)
		require.Equal(t, schemas.StateSuccess, st.State, st.Err())
	}
}

// gitIn runs git in dir, with an identity and a default branch.
func gitIn(t testing.TB, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com",
		"-c", "init.defaultBranch=main"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "git %v: %s", args, out)
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, b, 0o644))
}

func taskName(t testing.TB, ev *schemas.Event) string {
	t.Helper()
	var d struct {
		Task string `json:"task"`
	}
	require.NoError(t, jsonUnmarshal(ev.EventData, &d))
	return d.Task
}

// A git pull that fails ends the task failed with git's own message, without
// running the playbook; one that hangs is stopped after git_timeout.
func TestGitPullFailures(t *testing.T) {
	t.Parallel()
	// Not a git repository.
	plain := t.TempDir()
	copyFile(t, filepath.Join(playbookDir(t), "quick.yml"), filepath.Join(plain, "quick.yml"))
	copyFile(t, filepath.Join(playbookDir(t), "inventory", "hosts"), filepath.Join(plain, "hosts"))
	// A repository whose remote never answers.
	hanging := t.TempDir()
	cmd := exec.Command("git", "init", "-q", hanging)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	cmd = exec.Command("git", "-C", hanging, "remote", "add", "origin", "ssh://git.invalid/repo.git")
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	copyFile(t, filepath.Join(playbookDir(t), "quick.yml"), filepath.Join(hanging, "quick.yml"))
	copyFile(t, filepath.Join(playbookDir(t), "inventory", "hosts"), filepath.Join(hanging, "hosts"))

	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{Group: "plain", PlaybookDir: plain})
	startWorker(t, ns.url, workerOpts{Group: "hanging", PlaybookDir: hanging, Extra: "git_timeout: 2",
		Env: []string{"GIT_SSH_COMMAND=sleep 31.7 #"}})
	c := connectClient(t, ns.url)

	_, errOut, code := runCLI(t, "submit", "-s", ns.url, "--group", "plain", "--task-id", "nogit", "-p", "quick.yml",
		"-i", "hosts", "--git-pull", "--wait")
	require.Equal(t, 1, code, errOut)
	st, err := c.status("plain", "nogit")
	require.NoError(t, err)
	require.Equal(t, schemas.StateFailed, st.State)
	require.Contains(t, st.Err(), "git pull failed")
	require.Contains(t, st.Err(), "not a git repository")
	require.Nil(t, st.ReturnCode, "the playbook did not run")

	start := time.Now()
	_, errOut, code = runCLI(t, "submit", "-s", ns.url, "--group", "hanging", "--task-id", "hang", "-p", "quick.yml",
		"-i", "hosts", "--git-pull", "--wait")
	require.Equal(t, 1, code, errOut)
	require.Less(t, time.Since(start), 20*time.Second)
	st, err = c.status("hanging", "hang")
	require.NoError(t, err)
	require.Equal(t, schemas.StateFailed, st.State)
	require.Contains(t, st.Err(), "git pull timed out after 2s")
	require.Empty(t, processesWith("sleep", "31.7"), "the hanging git is killed")
}

// Playbooks do not inherit the worker's secrets: neither the RUNNER_NATS_*
// variables nor the variables the configuration file refers to.
func TestSecretsStayOutOfPlaybooks(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{TopExtra: "mqtt:\n  password: ${AW_TEST_SECRET}",
		Env: []string{"AW_TEST_SECRET=s3cret-from-config", "RUNNER_NATS_CLIENT_NAME=s3cret-nats", "AW_TEST_PLAIN=visible"}})
	c := connectClient(t, ns.url)
	_, errOut, code := runCLI(t, "submit", "-s", ns.url, "--task-id", "env-1", "-p", "env.yml", "-i", "inventory/hosts", "--wait")
	require.Equal(t, 0, code, errOut)
	st, err := c.status("production", "env-1")
	require.NoError(t, err)
	require.Equal(t, map[string]any{"from_config": "", "runner_nats": "", "plain": "visible"}, st.Output)
	for _, m := range c.runnerMessages(t, "env-1") {
		b, _ := json.Marshal(m)
		require.NotContains(t, string(b), "s3cret")
	}
}

// When ansible-playbook cannot even start, the task fails with the reason.
func TestAnsibleMissing(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{Extra: "ansible_playbook: /nonexistent/ansible-playbook"})
	_, errOut, code := runCLI(t, "submit", "-s", ns.url, "--task-id", "no-ansible", "-p", "quick.yml", "-i", "inventory/hosts", "--wait")
	require.Equal(t, 1, code, errOut)
	c := connectClient(t, ns.url)
	st, err := c.status("production", "no-ansible")
	require.NoError(t, err)
	require.Equal(t, schemas.StateFailed, st.State)
	require.Contains(t, st.Err(), "/nonexistent/ansible-playbook")
	require.Contains(t, st.Err(), "no such file")
}
