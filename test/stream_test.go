package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/worker"
)

// ansibleRunner is Debian's ansible-runner 2.3.1.
const ansibleRunner = "/usr/bin/ansible-runner"

// stage is one command of a transmit | worker | process pipeline.
type stage struct {
	name string // for messages
	argv []string
}

func ours(args ...string) stage {
	return stage{"ansible-worker " + args[0], append([]string{binary}, args...)}
}
func runner(args ...string) stage {
	return stage{"ansible-runner " + args[0], append([]string{ansibleRunner}, args...)}
}

// pipeline runs the stages with each one's stdout on the next one's stdin
// and returns the last one's stdout and every exit code.
func pipeline(t *testing.T, stages ...stage) (string, []int) {
	t.Helper()
	cmds := make([]*exec.Cmd, len(stages))
	errs := make([]*bytes.Buffer, len(stages))
	var out bytes.Buffer
	for i, s := range stages {
		cmds[i] = exec.Command(s.argv[0], s.argv[1:]...)
		errs[i] = &bytes.Buffer{}
		cmds[i].Stderr = errs[i]
		if i > 0 {
			r, err := cmds[i-1].StdoutPipe()
			require.NoError(t, err)
			cmds[i].Stdin = r
		}
	}
	cmds[len(cmds)-1].Stdout = &out
	for _, c := range cmds {
		require.NoError(t, c.Start())
	}
	codes := make([]int, len(cmds))
	for i := len(cmds) - 1; i >= 0; i-- {
		if err := cmds[i].Wait(); err != nil {
			ee, ok := err.(*exec.ExitError)
			require.True(t, ok, "%s: %v", stages[i].name, err)
			codes[i] = ee.ExitCode()
		}
		t.Logf("%s exit %d, stderr: %s", stages[i].name, codes[i], errs[i].String())
	}
	return out.String(), codes
}

// privateDataDir makes a private data directory for playbook of the test
// playbooks: project/, inventory/hosts, env/extravars.
func privateDataDir(t *testing.T, playbook string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"project", "inventory", "env"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	copyFile(t, filepath.Join(playbookDir(t), playbook), filepath.Join(dir, "project", playbook))
	copyFile(t, filepath.Join(playbookDir(t), "inventory", "hosts"), filepath.Join(dir, "inventory", "hosts"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "env", "extravars"), []byte("who: streams\n"), 0o644))
	return dir
}

// artifacts is what a job left in <dir>/artifacts/<ident>, in a form two
// runs can be compared by: status, rc, the event names in counter order,
// and the output without colours, line ends or timings.
type artifacts struct {
	Status, RC string
	Events     []string
	Stdout     string
}

// timings are the times a command module reports: they differ from run
// to run.
var timings = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+|\d+:\d\d:\d\d\.\d+`)

func readArtifacts(t *testing.T, dir, ident string) artifacts {
	t.Helper()
	art := filepath.Join(dir, "artifacts", ident)
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(art, name))
		require.NoError(t, err, "artifact %s", name)
		return string(b)
	}
	a := artifacts{Status: read("status"), RC: read("rc")}
	stdout := worker.StripANSI(strings.ReplaceAll(read("stdout"), "\r\n", "\n"))
	a.Stdout = timings.ReplaceAllString(strings.TrimSpace(stdout), "TIME")
	entries, err := os.ReadDir(filepath.Join(art, "job_events"))
	require.NoError(t, err)
	type ev struct {
		Counter int    `json:"counter"`
		Event   string `json:"event"`
	}
	var evs []ev
	for _, e := range entries {
		var x ev
		require.NoError(t, json.Unmarshal([]byte(read(filepath.Join("job_events", e.Name()))), &x))
		evs = append(evs, x)
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].Counter < evs[j].Counter })
	for i, e := range evs {
		require.Equal(t, i+1, e.Counter, "counters 1..N without gaps")
		a.Events = append(a.Events, e.Event)
	}
	return a
}

// Every mix of ansible-worker's and ansible-runner's stages gives the
// artifacts and events that ansible-runner alone gives.
func TestStreamMixesMatchAnsibleRunner(t *testing.T) {
	t.Parallel()
	for _, pb := range []string{"full.yml", "fail.yml"} {
		t.Run(pb, func(t *testing.T) {
			t.Parallel()
			ref := privateDataDir(t, pb)
			out, err := exec.Command(ansibleRunner, "run", ref, "-p", pb, "--ident", "ref").CombinedOutput()
			_ = err // a failing playbook exits non-zero
			want := readArtifacts(t, ref, "ref")
			require.NotEmpty(t, want.Events, string(out))

			mixes := map[string][3]func(dir string) stage{
				"ours|ours|ours": {
					func(d string) stage { return ours("transmit", d, "-p", pb, "--ident", "mix") },
					func(string) stage { return ours("worker") },
					func(d string) stage { return ours("process", d, "--ident", "mix") }},
				"runner|ours|runner": {
					func(d string) stage { return runner("transmit", d, "-p", pb, "--ident", "mix") },
					func(string) stage { return ours("worker") },
					func(d string) stage { return runner("process", d, "--ident", "mix") }},
				"ours|runner|ours": {
					func(d string) stage { return ours("transmit", d, "-p", pb, "--ident", "mix") },
					func(string) stage { return runner("worker") },
					func(d string) stage { return ours("process", d, "--ident", "mix") }},
			}
			for name, mix := range mixes {
				dir := privateDataDir(t, pb)
				printed, codes := pipeline(t, mix[0](dir), mix[1](dir), mix[2](dir))
				got := readArtifacts(t, dir, "mix")
				require.Equal(t, want, got, "%s: artifacts of %s", name, pb)
				require.Contains(t, worker.StripANSI(printed), "PLAY RECAP", "%s prints the output", name)
				require.Equal(t, 0, codes[0], "%s: transmit", name)
				if strings.HasPrefix(name, "ours|") && pb == "fail.yml" {
					require.Equal(t, 1, codes[2], "%s: our process exits 1 for a failed job", name)
				}
			}
		})
	}
}

// runWorker runs `ansible-worker worker args...` on a transmit stream of
// dir and returns its result stream; stop, when not nil, is called with the
// running process and its output so far once it has started.
func runWorker(t *testing.T, dir, playbook string, stop func(*exec.Cmd, *syncBuffer), args ...string) []byte {
	t.Helper()
	stream, err := exec.Command(binary, "transmit", dir, "-p", playbook, "--ident", "w").Output()
	require.NoError(t, err)
	cmd := exec.Command(binary, append([]string{"worker"}, args...)...)
	cmd.Stdin = bytes.NewReader(stream)
	out := &syncBuffer{}
	cmd.Stdout = out
	require.NoError(t, cmd.Start())
	if stop != nil {
		stop(cmd, out)
	}
	_ = cmd.Wait()
	return []byte(out.String())
}

// processExit runs our process stage on a result stream and returns its
// exit code.
func processExit(t *testing.T, dir string, results []byte) int {
	t.Helper()
	cmd := exec.Command(binary, "process", dir, "--ident", "w", "-q")
	cmd.Stdin = bytes.NewReader(results)
	if err := cmd.Run(); err != nil {
		ee, ok := err.(*exec.ExitError)
		require.True(t, ok, err)
		return ee.ExitCode()
	}
	return 0
}

// The worker stage's options and ends: a kept or deleted private data
// directory, keepalive lines while the playbook is quiet, a timeout from
// env/settings, and SIGTERM cancelling the run.
func TestStreamWorkerOptions(t *testing.T) {
	t.Parallel()
	t.Run("private data dir kept or deleted", func(t *testing.T) {
		t.Parallel()
		dir := privateDataDir(t, "quick.yml")
		keep := filepath.Join(t.TempDir(), "kept")
		runWorker(t, dir, "quick.yml", nil, "--private-data-dir", keep)
		b, err := os.ReadFile(filepath.Join(keep, "artifacts", "w", "status"))
		require.NoError(t, err)
		require.Equal(t, "successful", string(b))
		gone := filepath.Join(t.TempDir(), "gone")
		results := runWorker(t, dir, "quick.yml", nil, "--private-data-dir", gone, "--delete")
		_, err = os.Stat(gone)
		require.True(t, os.IsNotExist(err), "--delete removes the directory after the run")
		require.Equal(t, 0, processExit(t, dir, results))
	})
	t.Run("keepalive", func(t *testing.T) {
		t.Parallel()
		dir := privateDataDir(t, "slow.yml")
		require.NoError(t, os.WriteFile(filepath.Join(dir, "env", "extravars"), []byte("seconds: 3\n"), 0o644))
		results := runWorker(t, dir, "slow.yml", nil, "--keepalive-seconds", "0.5")
		require.Contains(t, string(results), `{"counter":0,"event":"keepalive","uuid":0}`)
		require.Equal(t, 0, processExit(t, dir, results))
		_, err := os.Stat(filepath.Join(dir, "artifacts", "w", "job_events", "0-0.json"))
		require.True(t, os.IsNotExist(err), "keepalives are not events")
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		dir := privateDataDir(t, "slow.yml")
		require.NoError(t, os.WriteFile(filepath.Join(dir, "env", "extravars"), []byte("seconds: 60\n"), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "env", "settings"), []byte("job_timeout: 4\n"), 0o644))
		results := runWorker(t, dir, "slow.yml", nil)
		require.Equal(t, 3, processExit(t, dir, results), "process exits 3 for a timeout")
		b, err := os.ReadFile(filepath.Join(dir, "artifacts", "w", "rc"))
		require.NoError(t, err)
		require.Equal(t, "254", string(b))
	})
	t.Run("SIGTERM cancels", func(t *testing.T) {
		t.Parallel()
		dir := privateDataDir(t, "slow.yml")
		require.NoError(t, os.WriteFile(filepath.Join(dir, "env", "extravars"), []byte("seconds: 60\n"), 0o644))
		start := time.Now()
		results := runWorker(t, dir, "slow.yml", func(cmd *exec.Cmd, out *syncBuffer) {
			checkFor(t, 30*time.Second, 50*time.Millisecond, func() error {
				if !strings.Contains(out.String(), `"event":"runner_on_start"`) {
					return fmt.Errorf("the playbook's task has not started")
				}
				return nil
			})
			require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		})
		require.Less(t, time.Since(start), 40*time.Second)
		require.Equal(t, 4, processExit(t, dir, results), "process exits 4 for a canceled job")
		b, err := os.ReadFile(filepath.Join(dir, "artifacts", "w", "status"))
		require.NoError(t, err)
		require.Equal(t, "canceled", string(b))
	})
}
