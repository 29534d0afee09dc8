//go:build linux

package worker

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// syncBuffer is a log any goroutine may write.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startModes are the ways a playbook starts: cold, and forked from a warm
// process (see bothStarts).
var startModes = []bool{false, true}

// warmBundle is a warm start for the tasks like one Process, and its log.
type warmBundle struct {
	warm *Warm
	log  *syncBuffer
}

// startWarm primes a warm process for tasks like p and waits until it is
// ready; it is closed when the test ends.
func startWarm(t testing.TB, p *Process) *warmBundle {
	t.Helper()
	b := &warmBundle{log: &syncBuffer{}}
	wm, err := NewWarm(p.Executable, t.TempDir(), slog.New(slog.NewTextHandler(b.log, nil)))
	require.NoError(t, err)
	t.Cleanup(wm.Close)
	b.warm = wm
	wm.Prime(p)
	b.waitReady(t, p)
	return b
}

// waitReady waits until the warm process for p is ready.
func (b *warmBundle) waitReady(t testing.TB, p *Process) {
	t.Helper()
	spec := newWarmSpec(p.Executable, p.Dir, p.environ())
	deadline := time.Now().Add(90 * time.Second)
	for b.warm.ready(spec) == nil {
		if time.Now().After(deadline) || strings.Contains(b.log.String(), "run cold") {
			t.Fatalf("warm process not ready; log:\n%s", b.log.String())
		}
		time.Sleep(50 * time.Millisecond) // polled until the deadline
	}
}

// warmProcess is a Process running a playbook of dir (with an inventory
// of localhost) that collects its output lines; a cold start has a
// supervisor, as in the worker.
func warmProcess(t *testing.T, dir, playbook string, lines *[]string, args ...string) *Process {
	t.Helper()
	plugin, err := InstallCallback(t.TempDir())
	require.NoError(t, err)
	self, err := os.Executable()
	require.NoError(t, err)
	sups := NewSupervisors(self, 1)
	t.Cleanup(sups.Close)
	return &Process{
		Supervisors: sups,
		Executable:  testAnsiblePlaybook,
		Args:        append([]string{"-i", "localhost,", "-c", "local", playbook}, args...),
		Dir:         dir,
		Env:         append(os.Environ(), "ANSIBLE_LOCAL_TEMP="+filepath.Join(t.TempDir(), "tmp")),
		PluginDir:   plugin,
		Ident:       "warm",
		KillGrace:   2 * time.Second,
		OnEvent: func(ev *schemas.Event) {
			if ev.Stdout != "" {
				*lines = append(*lines, StripANSI(ev.Stdout))
			}
		},
	}
}

// warmPlaybook writes playbook as pb.yml of a new directory and returns a
// Process running it, collecting its output lines, with a ready warm
// process.
func warmPlaybook(t *testing.T, playbook string, lines *[]string) (*Process, *warmBundle) {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "pb.yml"), playbook)
	p := warmProcess(t, dir, "pb.yml", lines)
	b := startWarm(t, p)
	p.Warm = b.warm
	return p, b
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
}

// Tasks forked from the warm process run their playbook as a cold start
// does: same output and exit code; the random filter differs between two
// of them; each gets its own temporary directory, removed at its end.
func TestWarmStartRunsPlaybooks(t *testing.T) {
	t.Parallel()
	var warmLines, coldLines []string
	p, b := warmPlaybook(t, `- hosts: all
  gather_facts: false
  tasks:
    - debug:
        msg: "draw {{ 1000000000 | random }} in {{ lookup('env', 'PWD') }}"
    - debug:
        msg: "shuffled {{ range(40) | list | shuffle | join(',') }}"
    - command: "false"
      when: fail | default(false) | bool
`, &warmLines)
	draws, shuffles := map[string]bool{}, map[string]bool{}
	for range 2 {
		warmLines = nil
		exit, err := p.Run(context.Background())
		require.NoError(t, err)
		require.True(t, exit.Warm, b.log.String())
		require.Equal(t, 0, exit.RC, strings.Join(warmLines, "\n"))
		for _, l := range warmLines {
			if i := strings.Index(l, `"msg": "draw `); i >= 0 {
				draws[l[i:]] = true
			}
		}
		shuffles[lineWith(warmLines, "shuffled ")] = true
	}
	require.Len(t, draws, 2, "two tasks draw different random numbers")
	require.Len(t, shuffles, 2, "the random module is seeded again in each task: %v", shuffles)

	cold := warmProcess(t, p.Dir, "pb.yml", &coldLines)
	cold.Env = p.Env
	exit, err := cold.Run(context.Background())
	require.NoError(t, err)
	require.False(t, exit.Warm)
	warmLines = nil
	exit, err = p.Run(context.Background())
	require.NoError(t, err)
	require.True(t, exit.Warm)
	require.Equal(t, mask(coldLines), mask(warmLines), "the same output as a cold start")

	p.Args = append(p.Args, "-e", "fail=true")
	exit, err = p.Run(context.Background())
	require.NoError(t, err)
	require.True(t, exit.Warm)
	require.Equal(t, 2, exit.RC)

	entries, err := os.ReadDir(filepath.Dir(strings.TrimPrefix(p.Env[len(p.Env)-1], "ANSIBLE_LOCAL_TEMP=")))
	require.NoError(t, err)
	for _, e := range entries {
		sub, _ := os.ReadDir(filepath.Join(filepath.Dir(strings.TrimPrefix(p.Env[len(p.Env)-1], "ANSIBLE_LOCAL_TEMP=")), e.Name()))
		require.Empty(t, sub, "each task removes its own temporary directory")
	}
}

// mask hides what differs between any two runs: the random draw, times.
func mask(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		if j := strings.Index(l, `"msg": "draw `); j >= 0 {
			l = l[:j] + "DRAW"
		}
		if j := strings.Index(l, `"msg": "shuffled `); j >= 0 {
			l = l[:j] + "SHUFFLED"
		}
		out[i] = l
	}
	return out
}

// lineWith returns the first line holding marker, from marker on.
func lineWith(lines []string, marker string) string {
	for _, l := range lines {
		if i := strings.Index(l, marker); i >= 0 {
			l, _, _ = strings.Cut(l[i:], "\n")
			return strings.TrimRight(l, `"`)
		}
	}
	return ""
}

// ansible.cfg created, then changed, between two tasks takes effect on the
// second: the warm process finds that a file it read changed, that task
// starts cold, and the next is forked from a new warm process that read
// the new file.
func TestWarmStartFollowsConfigChanges(t *testing.T) {
	t.Parallel()
	var lines []string
	p, b := warmPlaybook(t, `- hosts: all
  gather_facts: false
  tasks:
    - debug:
        msg: "timeout={{ lookup('ansible.builtin.config', 'DEFAULT_TIMEOUT') }}"
`, &lines)
	run := func() (Exit, string) {
		t.Helper()
		lines = nil
		exit, err := p.Run(context.Background())
		require.NoError(t, err)
		require.Equal(t, 0, exit.RC, strings.Join(lines, "\n"))
		return exit, lineWith(lines, "timeout=")
	}
	exit, got := run()
	require.True(t, exit.Warm)
	require.Equal(t, "timeout=10", got, "Ansible's default")

	for _, timeout := range []string{"33", "444"} {
		writeFile(t, filepath.Join(p.Dir, "ansible.cfg"), "[defaults]\ntimeout = "+timeout+"\n")
		exit, got = run()
		require.False(t, exit.Warm, "the warm process read the old file: this task starts cold")
		require.Equal(t, "timeout="+timeout, got)
		b.waitReady(t, p)
		exit, got = run()
		require.True(t, exit.Warm)
		require.Equal(t, "timeout="+timeout, got, "the new warm process read the new file")
	}
	require.Contains(t, b.log.String(), "a file Ansible read changed: "+filepath.Join(p.Dir, "ansible.cfg"))
}

// The warm process killed while a task it forked runs: the task runs on
// and ends as it would have (its supervisor does not depend on the warm
// process), nothing of it is left, the next task starts cold with one log
// line, and a new warm process takes over.
func TestWarmProcessKilledMidTask(t *testing.T) {
	t.Parallel()
	var lines []string
	p, b := warmPlaybook(t, `- hosts: all
  gather_facts: false
  tasks:
    - shell: "setsid sleep 71.25 > /dev/null 2>&1 < /dev/null & sleep 2.75; echo slept"
`, &lines)
	b.warm.mu.Lock()
	zygotePID := b.warm.cur.cmd.Process.Pid
	b.warm.mu.Unlock()

	type result struct {
		exit Exit
		err  error
	}
	done := make(chan result, 1)
	go func() {
		exit, err := p.Run(context.Background())
		done <- result{exit, err}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for len(running("sleep", "2.75")) == 0 {
		require.True(t, time.Now().Before(deadline), "the task never started its sleep")
		time.Sleep(20 * time.Millisecond) // polled until the deadline
	}
	require.NoError(t, syscall.Kill(zygotePID, syscall.SIGKILL))
	r := <-done
	require.NoError(t, r.err)
	require.True(t, r.exit.Warm)
	require.Equal(t, 0, r.exit.RC, strings.Join(lines, "\n"))
	require.NotEmpty(t, lineWith(lines, "changed: [localhost]"), strings.Join(lines, "\n"))
	require.Empty(t, running("sleep", "71.25"), "what the task daemonized is killed when it ends")

	lines = nil
	exit, err := p.Run(context.Background())
	require.NoError(t, err)
	require.False(t, exit.Warm, "no warm process: the task starts cold")
	require.Equal(t, 0, exit.RC)
	require.Regexp(t, `warm process (ended|gone)`, b.log.String())
	require.Empty(t, running("sleep", "71.25"))
	b.waitReady(t, p)
	exit, err = p.Run(context.Background())
	require.NoError(t, err)
	require.True(t, exit.Warm, "a new warm process serves again")
}

// A warm task stopped (timeout, cancel) ends as a cold one does: the same
// exit code, nothing left behind, even what ignored SIGINT.
func TestWarmStartStopsAsCold(t *testing.T) {
	t.Parallel()
	var warmLines, coldLines []string
	p, _ := warmPlaybook(t, `- hosts: all
  gather_facts: false
  tasks:
    - shell: "trap '' INT; echo started; sleep 72.5"
`, &warmLines)
	cold := warmProcess(t, p.Dir, "pb.yml", &coldLines)
	cold.Env = p.Env
	stop := func(p *Process) Exit {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			deadline := time.Now().Add(30 * time.Second)
			for len(running("sleep", "72.5")) == 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond) // polled until the deadline
			}
			cancel()
		}()
		exit, err := p.Run(ctx)
		require.NoError(t, err)
		require.True(t, exit.Stopped)
		require.Empty(t, running("sleep", "72.5"))
		return exit
	}
	coldExit, warmExit := stop(cold), stop(p)
	require.True(t, warmExit.Warm)
	require.Equal(t, coldExit.RC, warmExit.RC, "cold:\n%s\nwarm:\n%s", strings.Join(coldLines, "\n"), strings.Join(warmLines, "\n"))
}

// benchWarm primes a warm process for runs like p and waits until it is
// ready.
func benchWarm(b *testing.B, p *Process) *Warm { return startWarm(b, p).warm }

// A task that ends holding Ansible's module build locks (a worker killed
// while it built a module, by a cancel or a timeout) does not block the
// next task of the same warm process: each task has its own locks, as a
// cold start has, instead of the semaphores the warm process made.
func TestWarmTaskLocksAreItsOwn(t *testing.T) {
	t.Parallel()
	var lines []string
	p, _ := warmPlaybook(t, `- hosts: all
  gather_facts: false
  tasks:
    - hold_module_locks:
      when: hold | default(false) | bool
    - command: "true"
      changed_when: false
      when: not (hold | default(false) | bool)
`, &lines)
	writeFile(t, filepath.Join(p.Dir, "action_plugins", "hold_module_locks.py"), `
from ansible.executor import action_write_locks
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        for lock in action_write_locks.action_write_locks.values():
            lock.acquire()
        return {"changed": False}
`)
	run := func(args ...string) Exit {
		t.Helper()
		lines = nil
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		defer cancel()
		q := *p
		q.Args = append(slices.Clone(p.Args), args...)
		exit, err := q.Run(ctx)
		require.NoError(t, err)
		require.True(t, exit.Warm)
		require.False(t, exit.Stopped, "the task hung:\n%s", strings.Join(lines, "\n"))
		require.Equal(t, 0, exit.RC, strings.Join(lines, "\n"))
		return exit
	}
	run("-e", "hold=true")
	run()
}

// A warm task cancelled the moment it starts is interrupted as a cold one
// is (rc 130, well before the kill grace): the SIGINT that reaches the
// playbook before it installed its own handlers is kept pending, not lost
// to the handlers it inherited from its supervisor.
func TestWarmStartCancelledAtOnce(t *testing.T) {
	t.Parallel()
	var warmLines, coldLines []string
	p, _ := warmPlaybook(t, `- hosts: all
  gather_facts: false
  tasks:
    - command: sleep 73.5
`, &warmLines)
	p.KillGrace = 20 * time.Second
	cold := warmProcess(t, p.Dir, "pb.yml", &coldLines)
	cold.Env, cold.KillGrace = p.Env, p.KillGrace
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for i, q := range []*Process{cold, p, p, p} {
		began := time.Now()
		exit, err := q.Run(cancelled)
		require.NoError(t, err)
		require.Equal(t, i > 0, exit.Warm)
		require.True(t, exit.Stopped)
		require.Equal(t, 130, exit.RC, "run %d:\n%s\n%s", i, strings.Join(coldLines, "\n"), strings.Join(warmLines, "\n"))
		require.Less(t, time.Since(began), 10*time.Second, "run %d", i)
		require.Empty(t, running("sleep", "73.5"))
	}
}
