package test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// The attacks of a submitter who may publish task messages and nothing
// else. Each runs end to end against a real worker, real Ansible and a
// real nats publish, and checks a canary file or a secret string.

// secPlaybooks are written to the playbook directory of every attack.
var secPlaybooks = map[string]string{
	"module.yml": `- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.ping:
`,
	"users.yml": `- hosts: all
  gather_facts: false
  tasks:
    - name: each user
      ansible.builtin.debug:
        msg: "user {{ item.key }} uid {{ item.value }}"
      loop: "{{ users | dict2items }}"
    - name: each user again
      ansible.builtin.debug:
        msg: "{{ item.key }}"
      with_dict: "{{ users }}"
`,
}

// attack is the test bundle of one attack: its own playbook directory, a
// server, a worker of group production and a client.
type attack struct {
	t      *testing.T
	dir    string
	canary string
	secret string
	url    string
	w      *workerProc
	c      *client
}

// newAttack starts a worker whose environment holds a secret, with extra
// worker configuration extra.
func newAttack(t *testing.T, extra string) *attack {
	t.Helper()
	a := &attack{t: t, dir: t.TempDir(), secret: fmt.Sprintf("AW-SECRET-%d", time.Now().UnixNano())}
	a.canary = filepath.Join(t.TempDir(), "canary")
	require.NoError(t, os.MkdirAll(filepath.Join(a.dir, "inventory"), 0o755))
	copyFile(t, filepath.Join(playbookDir(t), "inventory", "hosts"), filepath.Join(a.dir, "inventory", "hosts"))
	copyFile(t, filepath.Join(playbookDir(t), "quick.yml"), filepath.Join(a.dir, "quick.yml"))
	for name, body := range secPlaybooks {
		require.NoError(t, os.WriteFile(filepath.Join(a.dir, name), []byte(body), 0o644))
	}
	ns := startServer(t)
	a.url = ns.url
	a.c = connectClient(t, ns.url)
	a.w = a.startWorker("production", extra)
	return a
}

// startWorker starts one more worker of group on the attack's server.
func (a *attack) startWorker(group, extra string) *workerProc {
	return startWorker(a.t, a.url, workerOpts{Group: group, PlaybookDir: a.dir, Extra: extra,
		Env: []string{"AW_ATTACK_SECRET=" + a.secret}})
}

// run submits a task with the nats CLI and returns its final status.
func (a *attack) run(group string, task map[string]any) *schemas.TaskStatus {
	a.t.Helper()
	id := task["task_id"].(string)
	jsPub(a.t, a.url, "ansible."+group+".tasks", id, taskJSON(a.t, task))
	return a.c.waitFinal(a.t, group, id, 60*time.Second)
}

// refused requires that the task failed, before Ansible ran, saying want.
func (a *attack) refused(st *schemas.TaskStatus, want string) {
	a.t.Helper()
	require.Equal(a.t, schemas.StateFailed, st.State, "task %s: %s", st.TaskID, st.Err())
	require.Contains(a.t, st.Err(), want)
	require.Nil(a.t, st.ReturnCode, "ansible-playbook ran for %s", st.TaskID)
}

// noCanary requires that the canary file does not exist.
func (a *attack) noCanary() {
	a.t.Helper()
	_, err := os.Stat(a.canary)
	require.True(a.t, os.IsNotExist(err), "the attack ran a command: %s exists", a.canary)
}

// noSecret requires that the secret appears in no event, runner status or
// TaskStatus of the task and in no log line of the worker.
func (a *attack) noSecret(id string) {
	a.t.Helper()
	for _, m := range a.c.runnerMessages(a.t, id) {
		b, err := json.Marshal(m)
		require.NoError(a.t, err)
		require.NotContains(a.t, string(b), a.secret, "published on %s", m.Subject)
	}
	st, err := a.c.status("production", id)
	require.NoError(a.t, err)
	b, _ := json.Marshal(st)
	require.NotContains(a.t, string(b), a.secret)
	require.NotContains(a.t, a.w.logs.String(), a.secret)
}

func TestSecExtraVarsConnection(t *testing.T) {
	t.Parallel()
	a := newAttack(t, "")
	interp := "touch " + a.canary + "; /usr/bin/python3"
	st := a.run("production", map[string]any{"task_id": "interp", "playbook": "module.yml", "inventory": "inventory/hosts",
		"extra_vars": map[string]any{"ansible_python_interpreter": interp}})
	a.refused(st, `"ansible_python_interpreter" may not be set by a task`)
	st = a.run("production", map[string]any{"task_id": "ssh", "playbook": "module.yml", "inventory": "inventory/hosts",
		"extra_vars": map[string]any{"ansible_connection": "ssh", "ansible_host": "127.0.0.1",
			"ansible_ssh_common_args": "-oProxyCommand='touch " + a.canary + "'"}})
	a.refused(st, `"ansible_connection", "ansible_host", "ansible_ssh_common_args" may not be set`)
	st = a.run("production", map[string]any{"task_id": "magic", "playbook": "module.yml", "inventory": "inventory/hosts",
		"extra_vars": map[string]any{"inventory_hostname": "evil.example", "environment": map[string]any{"X": "1"}}})
	a.refused(st, `"environment", "inventory_hostname" may not be set`)
	a.noCanary()

	// Nested names are data, and a name the operator allows goes through:
	// the attack is real once allowed, which is what the refusal prevents.
	trusted := a.startWorker("trusted", "allow_extra_vars: [ansible_python_interpreter]")
	defer trusted.stop(t)
	st = a.run("trusted", map[string]any{"task_id": "allowed", "playbook": "module.yml", "inventory": "inventory/hosts",
		"extra_vars": map[string]any{"ansible_python_interpreter": interp, "app": map[string]any{"ansible_host": "x"}}})
	require.Equal(t, schemas.StateSuccess, st.State, st.Err())
	_, err := os.Stat(a.canary)
	require.NoError(t, err, "the allowed interpreter ran")
}

func TestSecTemplatesInKeys(t *testing.T) {
	t.Parallel()
	a := newAttack(t, "")
	key := "{{ lookup('pipe', 'touch " + a.canary + "') }}"
	st := a.run("production", map[string]any{"task_id": "keys", "playbook": "users.yml", "inventory": "inventory/hosts",
		"extra_vars": map[string]any{"users": map[string]any{key: 1001, "alice": 1002},
			"deep": []any{map[string]any{key: map[string]any{key: key}}}}})
	require.Equal(t, schemas.StateSuccess, st.State, st.Err())
	a.noCanary()
	var shown bool
	for _, ev := range events(a.c.runnerMessages(t, "keys")) {
		shown = shown || strings.Contains(ev.Stdout, "user "+key+" uid 1001")
	}
	require.True(t, shown, "the key reached the playbook as text")

	// Top-level names are variable names, nothing else.
	st = a.run("production", map[string]any{"task_id": "topkey", "playbook": "users.yml", "inventory": "inventory/hosts",
		"extra_vars": map[string]any{key: 1}})
	a.refused(st, "is not a variable name")
	a.noCanary()
}

func TestSecHostPatternFileRead(t *testing.T) {
	t.Parallel()
	a := newAttack(t, "")
	environ := "@/proc/" + strconv.Itoa(a.w.cmd.Process.Pid) + "/environ"
	for _, tc := range []struct {
		id    string
		field string
		value any
	}{
		{"limit-file", "limit", environ},
		{"limit-file-2", "limit", "all:" + environ},
		{"tags-file", "tags", []string{environ}},
		{"skip-file", "skip_tags", []string{"x", environ}},
	} {
		task := map[string]any{"task_id": tc.id, "playbook": "quick.yml", "inventory": "inventory/hosts", tc.field: tc.value}
		a.refused(a.run("production", task), tc.field+" must not contain '@'")
		a.noSecret(tc.id)
	}
}

func TestSecRegexHostPattern(t *testing.T) {
	t.Parallel()
	a := newAttack(t, "")
	hosts := strings.Repeat("a", 40) + "b,"
	start := time.Now()
	st := a.run("production", map[string]any{"task_id": "redos", "playbook": "quick.yml", "inventory": hosts,
		"limit": "~(a+)+$"})
	a.refused(st, "worker.allow_limit_regex")
	require.Less(t, time.Since(start), 20*time.Second)

	st = a.run("production", map[string]any{"task_id": "long-limit", "playbook": "quick.yml", "inventory": "inventory/hosts",
		"limit": strings.Repeat("a:", schemas.MaxLimitLength)})
	a.refused(st, "limit is 32768 characters long, the limit is 16384")

	// A plain pattern still works, and an operator may allow regexes.
	st = a.run("production", map[string]any{"task_id": "glob", "playbook": "quick.yml", "inventory": "inventory/hosts",
		"limit": "local*:!nothing"})
	require.Equal(t, schemas.StateSuccess, st.State, st.Err())
	regex := a.startWorker("regex", "allow_limit_regex: true")
	defer regex.stop(t)
	st = a.run("regex", map[string]any{"task_id": "regex-ok", "playbook": "quick.yml", "inventory": "inventory/hosts",
		"limit": "~local.*"})
	require.Equal(t, schemas.StateSuccess, st.State, st.Err())
	require.Equal(t, 1, st.TasksOK)
}

func TestSecInventoryScripts(t *testing.T) {
	t.Parallel()
	a := newAttack(t, "")
	script := "#!/bin/sh\ntouch " + a.canary + "\necho '{\"all\": {\"hosts\": [\"localhost\"]}, \"_meta\": {\"hostvars\": " +
		"{\"localhost\": {\"ansible_connection\": \"local\"}}}}'\n"
	require.NoError(t, os.MkdirAll(filepath.Join(a.dir, "tools"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(a.dir, "tools", "inv.sh"), []byte(script), 0o755))

	st := a.run("production", map[string]any{"task_id": "script", "playbook": "quick.yml", "inventory": "tools/inv.sh"})
	require.Equal(t, 0, st.TasksOK, "the script inventory gave hosts")
	a.noCanary()
	st = a.run("production", map[string]any{"task_id": "scriptdir", "playbook": "quick.yml", "inventory": "tools"})
	require.Equal(t, 0, st.TasksOK, "the script inventory gave hosts")
	a.noCanary()
	a.refused(a.run("production", map[string]any{"task_id": "dot", "playbook": "quick.yml", "inventory": "."}),
		"is the playbook directory itself")
	a.refused(a.run("production", map[string]any{"task_id": "dotslash", "playbook": "quick.yml", "inventory": "./tools/.."}),
		"is the playbook directory itself")
	for i, inline := range []string{"localhost -oProxyCommand=x,", "localhost,-oProxyCommand=x,", "localhost ansible_connection=ssh,",
		"local\thost,", "a=b,"} {
		task := map[string]any{"task_id": fmt.Sprintf("inline-%d", i), "playbook": "quick.yml", "inventory": inline}
		a.refused(a.run("production", task), "inline host list takes host names")
	}
	st = a.run("production", map[string]any{"task_id": "inline-ok", "playbook": "quick.yml",
		"inventory": "localhost,127.0.0.1:22,[::1]:22,"})
	require.Equal(t, schemas.StateSuccess, st.State, st.Err())
	require.Equal(t, 3, st.TasksOK)
	a.noCanary()

	// Allowed by the operator, the same inventory runs: the attack is real.
	scripts := a.startWorker("scripts", "allow_inventory_scripts: true")
	defer scripts.stop(t)
	st = a.run("scripts", map[string]any{"task_id": "script-ok", "playbook": "quick.yml", "inventory": "tools/inv.sh"})
	require.Equal(t, schemas.StateSuccess, st.State, st.Err())
	require.Equal(t, 1, st.TasksOK)
	_, err := os.Stat(a.canary)
	require.NoError(t, err, "the allowed inventory script ran")
}

// A symlink swapped between the check and Ansible's open changes nothing:
// Ansible gets the resolved path that was checked.
func TestSecSymlinkSwap(t *testing.T) {
	t.Parallel()
	a := newAttack(t, "")
	outside := t.TempDir()
	evil := "- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.command: touch " + a.canary + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(outside, "evil.yml"), []byte(evil), 0o644))
	link := filepath.Join(a.dir, "pb.yml")
	require.NoError(t, os.Symlink("quick.yml", link))

	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		targets := []string{"quick.yml", filepath.Join(outside, "evil.yml")}
		for i := 0; !stop.Load(); i++ {
			tmp := link + ".tmp"
			_ = os.Remove(tmp)
			if os.Symlink(targets[i%2], tmp) == nil {
				_ = os.Rename(tmp, link)
			}
			time.Sleep(15 * time.Millisecond) // the swap period, not a wait for a result
		}
	}()
	ran := 0
	for i := range 8 {
		st := a.run("production", map[string]any{"task_id": fmt.Sprintf("swap-%d", i), "playbook": "pb.yml",
			"inventory": "inventory/hosts"})
		if st.State == schemas.StateSuccess {
			ran++
		} else {
			require.Contains(t, st.Err(), "leads outside the playbook directory")
		}
	}
	stop.Store(true)
	<-done
	a.noCanary()
	require.Positive(t, ran, "no task passed the check while the link pointed inside")
}

func TestSecBounds(t *testing.T) {
	t.Parallel()
	a := newAttack(t, "max_task_timeout: 60\ntask_timeout: 30")
	a.refused(a.run("production", map[string]any{"task_id": "forks", "playbook": "quick.yml", "inventory": "inventory/hosts",
		"forks": 51}), "forks 51 is more than worker.max_forks 50")
	a.refused(a.run("production", map[string]any{"task_id": "timeout", "playbook": "quick.yml", "inventory": "inventory/hosts",
		"timeout": 61}), "timeout 61 is more than worker.max_task_timeout 1m0s")
	st := a.run("production", map[string]any{"task_id": "in-bounds", "playbook": "quick.yml", "inventory": "inventory/hosts",
		"forks": 50, "timeout": 60})
	require.Equal(t, schemas.StateSuccess, st.State, st.Err())
	a.refused(a.run("production", map[string]any{"task_id": "hidden", "playbook": ".git/config", "inventory": "inventory/hosts"}),
		"names a hidden file or directory")
}
