package worker

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// Lines as the callback plugin writes them on the side channel (taken from
// a run of examples/playbooks/hello.yml), and a line of Ansible's own text.
const (
	benchOKLine    = `{"event":"runner_on_ok","uuid":"8db9dadc-c04d-4dfd-a658-bbf4eaf7bf97","parent_uuid":"02fc0000-0001-8a01-6dac-000000000004","pid":3371,"created":"2026-11-22T16:31:24.804854+00:00","event_data":{"playbook":"hello.yml","playbook_uuid":"3a3db50a-6a53-4672-9ca6-faaff4459fa1","play":"Hello","play_uuid":"02fc0000-0001-8a01-6dac-000000000002","play_pattern":"all","task":"Say hello","task_uuid":"02fc0000-0001-8a01-6dac-000000000004","task_action":"ansible.builtin.debug","resolved_action":"ansible.builtin.debug","task_args":"","task_path":"/work/main/examples/playbooks/hello.yml:6","host":"localhost","remote_addr":"localhost","start":"2026-11-22T16:31:24.769852+00:00","end":"2026-11-22T16:31:24.804705+00:00","duration":0.034853,"event_loop":null,"uuid":"8db9dadc-c04d-4dfd-a658-bbf4eaf7bf97","res":{"msg":"Hello world from localhost","_ansible_verbose_always":true,"_ansible_no_log":false,"changed":false}},"stdout":"ok: [localhost] => {\n    \"msg\": \"Hello world from localhost\"\n}\n"}` + "\n"
	benchStatsLine = `{"event":"playbook_on_stats","uuid":"af472595-a078-4abc-bfb1-cc7a85b055b5","parent_uuid":"3a3db50a-6a53-4672-9ca6-faaff4459fa1","pid":3371,"created":"2026-11-22T16:31:24.847480+00:00","event_data":{"playbook":"hello.yml","playbook_uuid":"3a3db50a-6a53-4672-9ca6-faaff4459fa1","changed":{},"dark":{},"failures":{},"ignored":{},"ok":{"localhost":2},"processed":{"localhost":1},"rescued":{},"skipped":{},"artifact_data":{"greeted":"world"},"uuid":"af472595-a078-4abc-bfb1-cc7a85b055b5"},"stdout":"\nPLAY RECAP *********************************************************************\nlocalhost                  : ok=2    changed=0    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0   \n\n"}` + "\n"
	benchRawLine   = "[WARNING]: provided hosts list is empty, only localhost is available. Note that the implicit localhost does not match 'all'\n"
)

func benchSeqEvent(b *testing.B, line string, plugin bool) *schemas.Event {
	b.Helper()
	s := &sequencer{ident: "bench", pid: 42}
	ev, _ := s.event(sourced{data: []byte(line), plugin: plugin})
	if ev == nil {
		b.Fatalf("no event from %q", line)
	}
	return ev
}

// BenchmarkSequencerPluginLine decodes one ~1 KB runner_on_ok side-channel
// line into an event.
func BenchmarkSequencerPluginLine(b *testing.B) {
	s := &sequencer{ident: "bench", pid: 42}
	l := sourced{data: []byte(benchOKLine), plugin: true}
	b.SetBytes(int64(len(l.data)))
	b.ReportAllocs()
	for b.Loop() {
		if ev, _ := s.event(l); ev == nil {
			b.Fatal("no event")
		}
	}
}

// BenchmarkSequencerRawLine turns one line of Ansible's own output into a
// verbose event.
func BenchmarkSequencerRawLine(b *testing.B) {
	s := &sequencer{ident: "bench", pid: 42}
	l := sourced{data: []byte(benchRawLine)}
	b.SetBytes(int64(len(l.data)))
	b.ReportAllocs()
	for b.Loop() {
		if ev, _ := s.event(l); ev == nil {
			b.Fatal("no event")
		}
	}
}

// BenchmarkProgressObserveOK is Progress following a runner_on_ok event.
func BenchmarkProgressObserveOK(b *testing.B) {
	ev := benchSeqEvent(b, benchOKLine, true)
	p := NewProgress()
	b.ReportAllocs()
	for b.Loop() {
		p.Observe(ev)
	}
	if c, _, _ := p.Snapshot(); c.OK == 0 {
		b.Fatal("runner_on_ok not counted")
	}
}

// BenchmarkProgressObserveStats is Progress taking the PLAY RECAP figures
// from playbook_on_stats.
func BenchmarkProgressObserveStats(b *testing.B) {
	ev := benchSeqEvent(b, benchStatsLine, true)
	p := NewProgress()
	b.ReportAllocs()
	for b.Loop() {
		p.Observe(ev)
	}
	if c, _, _ := p.Snapshot(); c.OK != 2 {
		b.Fatalf("ok=%d, want 2", c.OK)
	}
}

// BenchmarkMarshalEvent is the encoding of one event for publishing.
func BenchmarkMarshalEvent(b *testing.B) {
	ev := benchSeqEvent(b, benchOKLine, true)
	b.ReportAllocs()
	var n int
	for b.Loop() {
		out, err := json.Marshal(ev)
		if err != nil {
			b.Fatal(err)
		}
		n = len(out)
	}
	b.SetBytes(int64(n))
}

// benchPlaybook returns ansible-playbook's path and the absolute paths of
// the bench inventory and playbook, or skips when Ansible is missing.
func benchPlaybook(b *testing.B) (exe, dir, inventory, playbook string) {
	b.Helper()
	exe, err := exec.LookPath("ansible-playbook")
	if err != nil {
		b.Fatal("ansible-playbook is not installed: run scripts/deps.sh")
	}
	dir, err = filepath.Abs("testdata")
	if err != nil {
		b.Fatal(err)
	}
	return exe, dir, filepath.Join(dir, "callback_hosts"), filepath.Join(dir, "bench.yml")
}

// BenchmarkRunPlaybook runs testdata/bench.yml (three debug tasks) the way
// the worker does: Process.Run with the callback plugin and its event
// pipe. Compare with BenchmarkRawPlaybook for the cost of the plugin and
// the event handling.
func BenchmarkRunPlaybook(b *testing.B) { benchRunPlaybook(b, "", false) }

// BenchmarkRunPlaybookSupervised is BenchmarkRunPlaybook under the
// supervisor process the worker puts between itself and ansible-playbook
// (here the test binary plays ansible-worker).
func BenchmarkRunPlaybookSupervised(b *testing.B) {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	benchRunPlaybook(b, self, false)
}

// BenchmarkRunPlaybookWarm is BenchmarkRunPlaybookSupervised with each run
// forked from a warm process (Linux; elsewhere it reports the cold runs).
func BenchmarkRunPlaybookWarm(b *testing.B) {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	benchRunPlaybook(b, self, true)
}

func benchRunPlaybook(b *testing.B, supervisor string, warm bool) {
	_, dir, inventory, playbook := benchPlaybook(b)
	pluginDir, err := InstallCallback(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var sups *Supervisors
	if supervisor != "" {
		sups = NewSupervisors(supervisor, 1)
		defer sups.Close()
	}
	var wm *Warm
	if warm {
		wm = benchWarm(b, &Process{Executable: "ansible-playbook", Dir: dir, Env: os.Environ(), PluginDir: pluginDir})
	}
	total, runs := 0, 0
	for b.Loop() {
		var events []*schemas.Event
		p := &Process{
			Warm:        wm,
			Executable:  "ansible-playbook",
			Args:        []string{"-i", inventory, playbook},
			Dir:         dir,
			Env:         os.Environ(),
			PluginDir:   pluginDir,
			Ident:       "bench",
			KillGrace:   5 * time.Second,
			Supervisors: sups,
			OnEvent:     func(ev *schemas.Event) { events = append(events, ev) },
		}
		exit, err := p.Run(ctx)
		if err != nil || exit.RC != 0 || !exit.Complete || exit.Warm != (wm != nil) {
			b.Fatalf("run: %+v, %v", exit, err)
		}
		total += len(events)
		runs++
	}
	b.ReportMetric(float64(total)/float64(runs), "events/op")
}

// BenchmarkRawPlaybook runs the same playbook with plain exec.Command and
// the default stdout callback, output discarded: the baseline.
func BenchmarkRawPlaybook(b *testing.B) {
	exe, dir, inventory, playbook := benchPlaybook(b)
	for b.Loop() {
		cmd := exec.Command(exe, "-i", inventory, playbook)
		cmd.Dir = dir
		cmd.Env = os.Environ()
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawPlaybookWithPlugin is BenchmarkRawPlaybook with the callback
// plugin writing its events to /dev/null: the plugin's own (Python) cost,
// without the worker's reading and decoding.
func BenchmarkRawPlaybookWithPlugin(b *testing.B) { benchRawWithPlugin(b, false) }

// BenchmarkRawPlaybookWithCompiledPlugin is BenchmarkRawPlaybookWithPlugin
// with the plugin's bytecode compiled beforehand: where
// PYTHONDONTWRITEBYTECODE is set (or the plugin directory is read-only)
// Python otherwise compiles the plugin's source on every run.
func BenchmarkRawPlaybookWithCompiledPlugin(b *testing.B) { benchRawWithPlugin(b, true) }

func benchRawWithPlugin(b *testing.B, compiled bool) {
	exe, dir, inventory, playbook := benchPlaybook(b)
	pluginDir, err := InstallCallback(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	if compiled {
		// The interpreter ansible-playbook runs with, from its #! line.
		head, err := os.ReadFile(exe)
		if err != nil {
			b.Fatal(err)
		}
		line, _, _ := strings.Cut(string(head), "\n")
		interp := strings.Fields(strings.TrimPrefix(line, "#!"))
		if len(interp) == 0 {
			b.Fatal("ansible-playbook has no #! line")
		}
		args := append(interp[1:], "-m", "py_compile", filepath.Join(pluginDir, CallbackPluginName+".py"))
		if out, err := exec.Command(interp[0], args...).CombinedOutput(); err != nil {
			b.Fatalf("py_compile: %v: %s", err, out)
		}
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	for b.Loop() {
		cmd := exec.Command(exe, "-i", inventory, playbook)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), CallbackEnv(pluginDir, eventFD)...)
		cmd.ExtraFiles = []*os.File{devnull}
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
	}
}
