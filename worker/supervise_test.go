package worker

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// The test binary doubles as the playbook supervisor, as the ansible-worker
// binary does.
func init() {
	if len(os.Args) > 1 && os.Args[1] == SuperviseArg {
		os.Exit(Supervise(os.Args[2:]))
	}
}

// running reports the pids whose command line is exactly argv.
func running(argv ...string) []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.TrimRight(string(b), "\x00") == strings.Join(argv, "\x00") {
			out = append(out, p)
		}
	}
	return out
}

// A process that daemonizes out of the playbook's process group and session
// is still killed when the run ends, and the run's output and exit code come
// through the pre-started supervisor.
func TestSupervisorKillsDaemonizedDescendants(t *testing.T) {
	self, err := os.Executable()
	require.NoError(t, err)
	sups := NewSupervisors(self, 1)
	defer sups.Close()

	var events []*schemas.Event
	p := &Process{
		Executable:  "/bin/sh",
		Args:        []string{"-c", "setsid sleep 67.25 & echo started; exit 3"},
		Dir:         t.TempDir(),
		Env:         os.Environ(),
		PluginDir:   t.TempDir(),
		Ident:       "sup",
		KillGrace:   time.Second,
		Supervisors: sups,
		OnEvent:     func(ev *schemas.Event) { events = append(events, ev) },
	}
	exit, err := p.Run(context.Background())
	require.NoError(t, err)
	require.Equal(t, 3, exit.RC)
	require.Len(t, events, 1)
	require.Equal(t, "started", events[0].Stdout)
	require.Empty(t, running("sleep", "67.25"), "the daemonized sleep was killed")
}

// A stopped run (ctx ends) gets SIGINT, then the supervisor kills the rest.
func TestSupervisorStopsRun(t *testing.T) {
	self, err := os.Executable()
	require.NoError(t, err)
	sups := NewSupervisors(self, 1)
	defer sups.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	p := &Process{
		Executable:  "/bin/sh",
		Args:        []string{"-c", "trap '' INT; sleep 68.5; echo never"},
		Dir:         t.TempDir(),
		Env:         os.Environ(),
		PluginDir:   t.TempDir(),
		Ident:       "stop",
		KillGrace:   500 * time.Millisecond,
		Supervisors: sups,
	}
	start := time.Now()
	exit, err := p.Run(ctx)
	require.NoError(t, err)
	require.True(t, exit.Stopped)
	require.NotEqual(t, 0, exit.RC)
	require.Less(t, time.Since(start), 5*time.Second)
	require.Empty(t, running("sleep", "68.5"))
}

// readySupervisor is the pid of the supervisor parked for the next job,
// once there is one.
func readySupervisor(t *testing.T, sups *Supervisors) int {
	t.Helper()
	select {
	case sv := <-sups.ready:
		sups.ready <- sv
		return sv.cmd.Process.Pid
	case <-time.After(10 * time.Second):
		t.Fatal("no supervisor became ready")
		return 0
	}
}

// One supervisor serves job after job, each playbook in a process group of
// its own with its own exit code; one that had to be killed is replaced.
func TestSupervisorServesJobsInTurn(t *testing.T) {
	self, err := os.Executable()
	require.NoError(t, err)
	sups := NewSupervisors(self, 1)
	defer sups.Close()
	first := readySupervisor(t, sups)

	run := func(ctx context.Context, script string) (Exit, []*schemas.Event) {
		var events []*schemas.Event
		var group int
		p := &Process{Executable: "/bin/sh", Args: []string{"-c", script}, Dir: t.TempDir(), Env: os.Environ(),
			PluginDir: t.TempDir(), Ident: "turn", KillGrace: 300 * time.Millisecond, Supervisors: sups,
			OnStart: func(pid int) { group = pid },
			OnEvent: func(ev *schemas.Event) { events = append(events, ev) }}
		exit, err := p.Run(ctx)
		require.NoError(t, err)
		require.NotZero(t, group)
		require.NotEqual(t, first, group, "the playbook is not the supervisor")
		return exit, events
	}
	for i := range 3 {
		exit, events := run(context.Background(), "echo job "+itoa(i)+"; exit "+itoa(i))
		require.Equal(t, i, exit.RC)
		require.Len(t, events, 1)
		require.Equal(t, "job "+itoa(i), events[0].Stdout)
		require.Equal(t, first, readySupervisor(t, sups), "the same supervisor serves the next job")
	}
	var text []string
	missing := &Process{Executable: "/no/such/ansible-playbook", Dir: t.TempDir(), Env: os.Environ(),
		PluginDir: t.TempDir(), Ident: "missing", KillGrace: time.Second, Supervisors: sups,
		OnEvent: func(ev *schemas.Event) { text = append(text, ev.Stdout) }}
	exit, err := missing.Run(context.Background())
	require.NoError(t, err)
	require.Equal(t, 127, exit.RC)
	require.Len(t, text, 1)
	require.Contains(t, text[0], "cannot start /no/such/ansible-playbook")
	require.Equal(t, first, readySupervisor(t, sups), "a job that could not start leaves the supervisor serving")

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	exit, _ = run(ctx, "trap '' INT; sleep 69.5")
	require.True(t, exit.Stopped)
	require.Empty(t, running("sleep", "69.5"))
	next := readySupervisor(t, sups)
	require.NotEqual(t, first, next, "a supervisor told to kill everything is replaced")
	exit, _ = run(context.Background(), "exit 4")
	require.Equal(t, 4, exit.RC)
}
