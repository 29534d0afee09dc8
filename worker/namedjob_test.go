package worker

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/config"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// fakeResponses records the responses of named jobs.
type fakeResponses struct {
	mu  sync.Mutex
	ids map[string]bool
	got []schemas.JobResponse
	fmt []schemas.RequestFormat
}

func (f *fakeResponses) Respond(_ context.Context, id string, data []byte, format schemas.RequestFormat) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ids == nil {
		f.ids = map[string]bool{}
	}
	if f.ids[id] {
		return nil // stored once, as JetStream's duplicate window does
	}
	f.ids[id] = true
	r, pf, err := schemas.ParseJobResponse(data)
	if err != nil {
		return err
	}
	if pf != format {
		return fmt.Errorf("format %s encoded as %s", format, pf)
	}
	f.got, f.fmt = append(f.got, r), append(f.fmt, format)
	return nil
}

func (f *fakeResponses) results() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.got {
		out = append(out, r.Result)
	}
	return out
}

// namedLifecycle is a lifecycle with the jobs of jobs, recording
// responses; each fake playbook run sends two events.
func namedLifecycle(t *testing.T, mod func(*Config)) (*lifecycle, *fakeResponses, *[][]string) {
	jobs := config.Jobs{
		"deploy": {Name: "deploy", Playbooks: []string{"site.yml", "site.yml"}, Inventory: "hosts",
			Parameters: config.ParameterRule{Any: true}},
		"strict": {Name: "strict", Playbooks: []string{"site.yml"}, Parameters: config.ParameterRule{Names: []string{"version"}}},
	}
	lc := newLifecycle(t, func(c *Config) {
		c.Jobs = func() config.Jobs { return jobs }
		if mod != nil {
			mod(c)
		}
	})
	resp := &fakeResponses{}
	lc.w.ports.Responses = resp
	var argv [][]string
	inner := lc.w.execProcess
	lc.w.execProcess = func(ctx context.Context, p *Process) (Exit, error) {
		argv = append(argv, p.Args)
		for i := 1; i <= 2; i++ {
			p.OnEvent(&schemas.Event{UUID: fmt.Sprint(i), Counter: i, StartLine: i - 1, EndLine: i,
				Event: "runner_on_ok", Stdout: fmt.Sprintf("line %d of %s", i, p.Args[len(p.Args)-1])})
		}
		return inner(ctx, p)
	}
	return lc, resp, &argv
}

func namedTask(job, id string) []byte {
	return []byte(fmt.Sprintf(`{%q: {"request_id": %q, "parameters": {"version": "1"}}}`, job, id))
}

func TestNamedJobRunsEveryPlaybookAsOneTask(t *testing.T) {
	t.Parallel()
	lc, resp, argv := namedLifecycle(t, nil)
	require.Equal(t, []string{"ack"}, lc.deliver(1, 1, namedTask("deploy", "r1")))
	require.Equal(t, schemas.StateSuccess, lc.ledger.status("r1").State)
	require.Len(t, *argv, 2, "both playbooks")
	require.Contains(t, strings.Join((*argv)[0], " "), "-i hosts")
	require.Equal(t, []string{"event 1", "event 2", "event 3", "event 4"}, filterPrefix(lc.sinks.msgs["r1/1"], "event"),
		"one sequence of counters")
	require.Equal(t, []string{"started", "working", "success"}, dedupe(resp.results()))
	require.Equal(t, schemas.FormatJSON, resp.fmt[0])
	require.Equal(t, "deploy", resp.got[0].JobName)
	require.Equal(t, "r1", resp.got[0].RequestID)
}

func TestNamedJobStopsAtTheFirstFailedPlaybook(t *testing.T) {
	t.Parallel()
	lc, resp, argv := namedLifecycle(t, nil)
	lc.exit = Exit{RC: 2}
	require.Equal(t, []string{"ack"}, lc.deliver(1, 1, namedTask("deploy", "r1")))
	require.Len(t, *argv, 1, "the second playbook never runs")
	res := resp.results()
	require.Equal(t, "failure", res[len(res)-1])
	require.Contains(t, resp.got[len(resp.got)-1].Message, "ansible-playbook exited with code 2")
}

func TestNamedJobRefusals(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"unknown job":        {namedTask("nosuch", "r1"), `job "nosuch" is not in the worker's jobs file (jobs: deploy, strict)`},
		"parameter refused":  {[]byte(`{"strict": {"request_id": "r1", "parameters": {"other": 1}}}`), `parameters: "other" not accepted`},
		"unreadable id":      {[]byte(`{"deploy": {"request_id": "no good"}}`), "request_id"},
		"two jobs":           {[]byte("a: {request_id: r1}\nb: {request_id: r2}\n"), "one job per request"},
		"job in a JSON task": {[]byte(`{"task_id": "r1", "job": "nosuch"}`), `job "nosuch" is not in`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			lc, resp, _ := namedLifecycle(t, nil)
			settled := lc.deliver(1, 1, tc.data)
			require.Len(t, settled, 1)
			require.True(t, strings.HasPrefix(settled[0], "term"), settled[0])
			require.Zero(t, lc.runs.Load())
			require.Equal(t, []string{"failure"}, resp.results())
			require.Contains(t, resp.got[0].Message, tc.want)
		})
	}
}

func TestNamedJobsOnlyGroupRefusesPlaybooks(t *testing.T) {
	t.Parallel()
	lc, _, _ := namedLifecycle(t, func(c *Config) { c.PlaybooksOff = true })
	settled := lc.deliver(1, 1, task("raw", nil))
	require.Len(t, settled, 1)
	require.Contains(t, settled[0], "this group runs named jobs only (worker.allow_playbooks: false)")
	require.Equal(t, []string{"ack"}, lc.deliver(2, 1, namedTask("deploy", "r1")))
}

func filterPrefix(l []string, prefix string) []string {
	var out []string
	for _, s := range l {
		if strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out
}

// dedupe folds runs of the same result (several "working").
func dedupe(l []string) []string {
	var out []string
	for _, s := range l {
		if len(out) == 0 || out[len(out)-1] != s {
			out = append(out, s)
		}
	}
	return out
}
