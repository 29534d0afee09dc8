package test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// queuedTask submits with args through the CLI to a group whose worker is
// stopped, and returns the task request as it sits in the queue.
func queuedTask(t *testing.T, url string, js jetstream.JetStream, args ...string) map[string]any {
	t.Helper()
	_, errOut, code := runCLI(t, append([]string{"submit", "-s", url, "-p", "vars.yml", "-i", "inventory/hosts"}, args...)...)
	require.Equal(t, 0, code, errOut)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "ANSIBLE_TASKS")
	require.NoError(t, err)
	msg, err := st.GetLastMsgForSubject(ctx, "ansible.production.tasks")
	require.NoError(t, err)
	task := map[string]any{}
	require.NoError(t, json.Unmarshal(msg.Data, &task))
	return task
}

// -e takes what ansible-playbook -e takes (JSON, YAML block or flow, k=v
// with shell quoting, @FILE; later wins), and -v … -vvvv set the verbosity.
func TestCLIExtraVarsAndVerbosityLikeAnsible(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{}).stop(t) // it provisions the queue, then leaves the tasks there
	nc, err := nats.Connect(ns.url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	dir := t.TempDir()
	vars := filepath.Join(dir, "vars.yml")
	require.NoError(t, os.WriteFile(vars, []byte("from_file: yes-yaml\nwho: file\n"), 0o600))

	task := queuedTask(t, ns.url, js,
		"-e", `who="a b"`, "-e", "a=1 b='x y' c=it\\'s", "-e", "block: 1\nlist: [x, y]\n",
		"-e", "{flow: {n: 2}}", "-e", `{"json": true}`, "-e", "@"+vars, "-e", "last=wins who=last", "-vvv")
	require.Equal(t, map[string]any{
		"who": "last", "a": "1", "b": "x y", "c": "it's", "block": float64(1), "list": []any{"x", "y"},
		"flow": map[string]any{"n": float64(2)}, "json": true, "from_file": "yes-yaml", "last": "wins",
	}, task["extra_vars"])
	require.Equal(t, float64(3), task["verbosity"])

	for args, want := range map[string]float64{"-v": 1, "-vv": 2, "-vvvv": 4, "--verbosity=2": 2, "-vv -v": 3, "-v -v": 2} {
		task := queuedTask(t, ns.url, js, strings.Split(args, " ")...)
		require.Equal(t, want, task["verbosity"], args)
	}
	_, errOut, code := runCLI(t, "submit", "-s", ns.url, "-p", "vars.yml", "-i", "inventory/hosts", "-vvvv", "-v")
	require.Equal(t, 2, code, errOut)
	require.Contains(t, errOut, "verbosity")
	for _, bad := range []string{"novalue", `who="unterminated`, "vars.yml:", "./vars.yml"} {
		_, errOut, code := runCLI(t, "submit", "-s", ns.url, "-p", "vars.yml", "-i", "inventory/hosts", "-e", bad)
		require.Equal(t, 2, code, "-e %q: %s", bad, errOut)
	}
}

// --version prints the version set with -ldflags, else the build's, and
// the Go version.
func TestCLIVersion(t *testing.T) {
	t.Parallel()
	out, errOut, code := runCLI(t, "--version")
	require.Equal(t, 0, code, errOut)
	require.Regexp(t, `^ansible-worker \S+\n\s+go version = go1\.`, out)

	stamped := filepath.Join(t.TempDir(), "ansible-worker")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7-test", "-o", stamped, "../cmd/ansible-worker")
	b, err := build.CombinedOutput()
	require.NoError(t, err, string(b))
	b, err = exec.Command(stamped, "--version").CombinedOutput()
	require.NoError(t, err, string(b))
	require.True(t, strings.HasPrefix(string(b), "ansible-worker v9.8.7-test\n"), string(b))
}

// --help shows each flag's default once, and names the environment
// variables and exit codes.
func TestCLIHelpOneDefaultPerFlag(t *testing.T) {
	t.Parallel()
	root, _, code := runCLI(t, "--help")
	require.Equal(t, 0, code)
	for _, s := range []string{"ANSIBLE_WORKER_CONFIG", "NOTIFY_SOCKET", "RUNNER_NATS_", "docs/cli.md", "5 NATS unreachable", "--version"} {
		require.Contains(t, root, s)
	}
	for _, cmd := range []string{"", "run", "validate", "submit", "status", "watch", "tasks", "cancel", "completion"} {
		out, errOut, code := runCLI(t, strings.Fields(cmd+" --help")...)
		require.Equal(t, 0, code, errOut)
		for _, line := range strings.Split(out, "\n") {
			require.LessOrEqual(t, strings.Count(line, "(default"), 1, "%s --help: %q", cmd, line)
			require.NotContains(t, line, "(default: false)", "%s --help", cmd)
		}
	}
	out, _, _ := runCLI(t, "submit", "--help")
	require.Contains(t, out, "--forks N, -f N")
	require.Contains(t, out, "(default: 5)")
	require.Regexp(t, `(?m)^\s+-v\s+more output: -v, -vv, -vvv or -vvvv`, out)
}

// completion prints scripts that complete commands and flags by asking the
// binary; bash accepts and runs its script.
func TestCLICompletion(t *testing.T) {
	t.Parallel()
	commands := []string{"run", "validate", "submit", "status", "watch", "tasks", "cancel", "completion"}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		out, errOut, code := runCLI(t, "completion", sh)
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, "ansible-worker", sh)
		if sh == "fish" {
			for _, c := range commands {
				require.Contains(t, out, "-a '"+c+"'", "fish names %s", c)
			}
			require.NotContains(t, out, "__doc-cli")
		}
	}
	_, _, code := runCLI(t, "completion", "tcsh")
	require.Equal(t, 2, code)

	script := filepath.Join(t.TempDir(), "aw.bash")
	out, _, _ := runCLI(t, "completion", "bash")
	require.NoError(t, os.WriteFile(script, []byte(out), 0o600))
	b, err := exec.Command("bash", "-n", script).CombinedOutput()
	require.NoError(t, err, string(b))

	// The real completion function, as bash calls it on TAB.
	complete := func(words ...string) string {
		sh := `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _ansible_worker_complete; echo "${COMPREPLY[*]}"`
		cmd := exec.Command("bash", append([]string{"-c", sh, "bash", script}, words...)...)
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(binary)+":"+os.Getenv("PATH"))
		b, err := cmd.CombinedOutput()
		require.NoError(t, err, string(b))
		return strings.TrimSpace(string(b))
	}
	require.Equal(t, "submit", complete("ansible-worker", "su"))
	require.Equal(t, "status", complete("ansible-worker", "-c", "x.yaml", "sta"))
	require.Equal(t, "--extra-vars", complete("ansible-worker", "submit", "--extra"))
	require.Equal(t, "zsh", complete("ansible-worker", "completion", "z"))
	all := strings.Fields(complete("ansible-worker", ""))
	require.Subset(t, all, commands)
	require.NotContains(t, all, "__doc-cli")
}

// docs/cli.md is what the code renders: every command, flag, environment
// variable and exit code. Regenerate it with `go generate ./cmd/ansible-worker`.
func TestCLIDocUpToDate(t *testing.T) {
	t.Parallel()
	out, errOut, code := runCLI(t, "__doc-cli")
	require.Equal(t, 0, code, errOut)
	doc, err := os.ReadFile("../docs/cli.md")
	require.NoError(t, err)
	require.Equal(t, out, string(doc), "docs/cli.md is stale: run go generate ./cmd/ansible-worker")
	for _, s := range []string{"`ansible-worker submit`", "`--extra-vars VARS`", "`NOTIFY_SOCKET`", "`RUNNER_NATS_SERVERS`", "| 5 |"} {
		require.Contains(t, out, s)
	}
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	require.Contains(t, string(readme), "(docs/cli.md)")
}

// scripts/run.sh says it is building before the silent first compile.
func TestRunScriptSaysBuilding(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("../scripts/run.sh", "--version")
	var out, errOut syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	require.NoError(t, cmd.Run(), errOut.String())
	require.Contains(t, errOut.String(), "building ansible-worker…")
	require.Contains(t, out.String(), "ansible-worker ")
}
