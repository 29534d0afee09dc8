package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// Bad input of every kind: each gets a clear log line, a failed status with
// the reason when a task id can be read, and leaves the queue; the worker
// keeps running and still runs a good task afterwards.
func TestBadInput(t *testing.T) {
	t.Parallel()
	// A playbook directory of its own, with symlinks that lead out.
	dir := t.TempDir()
	outside := t.TempDir()
	copyFile(t, filepath.Join(playbookDir(t), "quick.yml"), filepath.Join(dir, "quick.yml"))
	copyFile(t, filepath.Join(playbookDir(t), "vars.yml"), filepath.Join(dir, "vars.yml"))
	copyFile(t, filepath.Join(playbookDir(t), "quick.yml"), filepath.Join(dir, "other.yml"))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "inventory"), 0o755))
	copyFile(t, filepath.Join(playbookDir(t), "inventory", "hosts"), filepath.Join(dir, "inventory", "hosts"))
	copyFile(t, filepath.Join(playbookDir(t), "quick.yml"), filepath.Join(outside, "evil.yml"))
	require.NoError(t, os.Symlink(filepath.Join(outside, "evil.yml"), filepath.Join(dir, "escape.yml")))
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "outdir")))

	ns := startServer(t)
	w := startWorker(t, ns.url, workerOpts{PlaybookDir: dir, Extra: "allow_playbooks: [quick.yml, vars.yml]"})
	c := connectClient(t, ns.url)

	good := func(id string) map[string]any {
		return map[string]any{"task_id": id, "playbook": "quick.yml", "inventory": "inventory/hosts"}
	}
	with := func(id string, k string, v any) string {
		m := good(id)
		m[k] = v
		return taskJSON(t, m)
	}
	without := func(id, k string) string {
		m := good(id)
		delete(m, k)
		return taskJSON(t, m)
	}
	cases := []struct {
		name, body string
		id         string // "" when no task id can be read
		reason     string // in error_message (or in the log when there is no id)
	}{
		{"not json", `{"task_id": "x",`, "", "not valid JSON"},
		{"not an object", `["task_id", "x"]`, "", "a request is a JSON task or {<job>: {request_id, parameters}}, got a list"},
		{"empty", ``, "", "empty"},
		{"bad id", with("bad id!", "task_id", "bad id!"), "", "task_id"},
		{"id too long", with(strings.Repeat("a", 129), "task_id", strings.Repeat("a", 129)), "", "129"},
		{"missing playbook", without("no-playbook", "playbook"), "no-playbook", "playbook is required"},
		{"missing inventory", without("no-inventory", "inventory"), "no-inventory", "inventory is required"},
		{"mistyped tags", with("typed", "tags", "deploy"), "typed", "tags must be an array of strings"},
		{"unknown field", with("unknown", "becom", true), "unknown", `"becom"`},
		{"dotdot", with("dotdot", "playbook", "../quick.yml"), "dotdot", "outside the playbook directory"},
		{"absolute", with("absolute", "playbook", filepath.Join(dir, "quick.yml")), "absolute", "relative to the playbook directory"},
		{"symlink out", with("symlink", "playbook", "escape.yml"), "symlink", "outside the playbook directory"},
		{"symlinked dir out", with("symlink-dir", "playbook", "outdir/evil.yml"), "symlink-dir", "outside the playbook directory"},
		{"inventory out", with("inv-out", "inventory", "../../etc/hosts"), "inv-out", "outside the playbook directory"},
		{"option playbook", with("opt-pb", "playbook", "--version"), "opt-pb", "must not start with '-'"},
		{"option limit", with("opt-limit", "limit", "-e@/etc/passwd"), "opt-limit", "must not start with '-'"},
		{"option tag", with("opt-tag", "tags", []string{"--help"}), "opt-tag", "must not start with '-'"},
		{"verbosity 5", with("verbose", "verbosity", 5), "verbose", "verbosity must be 0 to 4"},
		{"negative forks", with("forks", "forks", -2), "forks", "forks must be 1 or more"},
		{"missing playbook file", with("missing-file", "playbook", "nope.yml"), "missing-file", "not found"},
		{"not allowed", with("not-allowed", "playbook", "other.yml"), "not-allowed", "not in worker.allow_playbooks"},
	}
	for _, tc := range cases {
		out, err := natsCLI(t, ns.url, "pub", "ansible.production.tasks", tc.body)
		require.NoError(t, err, "%s: %s", tc.name, out)
	}
	// Larger than the server accepts: refused at publish, never queued.
	big := filepath.Join(t.TempDir(), "big.json")
	require.NoError(t, os.WriteFile(big, []byte(with("big", "extra_vars", map[string]any{"x": strings.Repeat("a", 2<<20)})), 0o600))
	_, errOut, code := runCLI(t, "submit", "-s", ns.url, big)
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "bytes, the limit is")

	for _, tc := range cases {
		if tc.id == "" {
			continue
		}
		st := c.waitFinal(t, "production", tc.id, 30*time.Second)
		require.Equal(t, schemas.StateFailed, st.State, tc.name)
		require.Contains(t, st.Err(), tc.reason, tc.name)
		require.Nil(t, st.ReturnCode, "%s: Ansible never ran", tc.name)
	}
	checkFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		logs := w.logs.String()
		for _, tc := range cases {
			if tc.id == "" && !strings.Contains(logs, tc.reason) {
				return fmt.Errorf("%s: no log line with %q", tc.name, tc.reason)
			}
		}
		// The pull logs each invalid task; one without a readable id may
		// be removed by the intake first, which logs it its own way.
		refused := map[string]bool{}
		for _, m := range regexp.MustCompile(`msg="(?:rejecting invalid task|submission refused and removed from the queue[^"]*)".* seq=(\d+) `).FindAllStringSubmatch(logs, -1) {
			refused[m[1]] = true
		}
		if n := len(refused); n < 14 {
			return fmt.Errorf("%d invalid tasks logged", n)
		}
		return nil
	})

	// Extra vars are data: a template inside one is never evaluated.
	marker := filepath.Join(t.TempDir(), "pwned")
	payload := "{{ lookup('pipe', 'touch " + marker + "') }}"
	_, errOut, code = runCLI(t, "submit", "-s", ns.url, "--task-id", "template", "-p", "vars.yml", "-i", "inventory/hosts",
		"--wait", "-e", `{"payload": "`+strings.ReplaceAll(payload, `"`, `\"`)+`"}`)
	require.Equal(t, 0, code, errOut)
	st, err := c.status("production", "template")
	require.NoError(t, err)
	require.Equal(t, payload, st.Output["payload"])
	require.NoFileExists(t, marker)

	// Nothing left in the queue, and the worker still works.
	waitQueueEmpty(t, ns.url)
	_, errOut, code = runCLI(t, "submit", "-s", ns.url, "--task-id", "still-fine", "-p", "quick.yml", "-i", "inventory/hosts", "--wait")
	require.Equal(t, 0, code, errOut)
}

// Output larger than a NATS message fits is shrunk, not lost: every event
// is published, counters without gaps. A task larger than the server
// accepts is refused at publish and never queued.
func TestOversizedMessages(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{})
	c := connectClient(t, ns.url)

	_, errOut, code := runCLI(t, "submit", "-s", ns.url, "--task-id", "big-output", "-p", "big.yml", "-i", "inventory/hosts", "--wait", "--quiet")
	require.Equal(t, 0, code, errOut)
	evs := events(c.runnerMessages(t, "big-output"))
	truncated := 0
	for i, ev := range evs {
		require.Equal(t, i+1, ev.Counter)
		if strings.Contains(ev.Stdout, "output truncated") {
			truncated++
		}
	}
	require.Equal(t, 1, truncated)
	require.Equal(t, []string{"Huge output", "After"}, taskStarts(t, evs))
	require.Equal(t, "playbook_on_stats", evs[len(evs)-1].Event)

	body := with2MB(t)
	cmd := exec.Command("nats", "--server", ns.url, "pub", "ansible.production.tasks", "--force-stdin")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "the server refuses it: %s", out)
	require.Contains(t, strings.ToLower(string(out)), "maximum payload")
	_, err = c.status("production", "too-big")
	require.Error(t, err, "never queued")
}

func with2MB(t *testing.T) string {
	return taskJSON(t, map[string]any{"task_id": "too-big", "playbook": "quick.yml", "inventory": "inventory/hosts",
		"extra_vars": map[string]any{"x": strings.Repeat("a", 2<<20)}})
}
