package test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
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

var (
	ansiCodes = regexp.MustCompile("\x1b\\[[0-9;]*m")
	// The times a command module reports differ from run to run.
	timings = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+|\d+:\d\d:\d\d\.\d+`)
)

func readArtifacts(t *testing.T, dir, ident string) artifacts {
	t.Helper()
	art := filepath.Join(dir, "artifacts", ident)
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(art, name))
		require.NoError(t, err, "artifact %s", name)
		return string(b)
	}
	a := artifacts{Status: read("status"), RC: read("rc")}
	stdout := ansiCodes.ReplaceAllString(strings.ReplaceAll(read("stdout"), "\r\n", "\n"), "")
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
				require.Contains(t, ansiCodes.ReplaceAllString(printed, ""), "PLAY RECAP", "%s prints the output", name)
				require.Equal(t, 0, codes[0], "%s: transmit", name)
				if strings.HasPrefix(name, "ours|") && pb == "fail.yml" {
					require.Equal(t, 1, codes[2], "%s: our process exits 1 for a failed job", name)
				}
			}
		})
	}
}
