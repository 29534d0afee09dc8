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
