package test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// namedJobs is the test bundle of the named-job tests: a server, a worker
// of group production whose jobs file is testdata/jobs/jobs.yml (copied,
// so a test may change it), and a client.
type namedJobs struct {
	url, cfg, jobsFile string
	mqttPort           int // nats-server's MQTT listener
	wp                 *workerProc
	c                  *client
}

func newNamedJobs(t *testing.T, extra string) *namedJobs {
	t.Helper()
	dir, err := filepath.Abs("testdata/jobs")
	require.NoError(t, err)
	jobsFile := filepath.Join(t.TempDir(), "jobs.yml")
	copyFile(t, filepath.Join(dir, "jobs.yml"), jobsFile)
	ns := startServer(t)
	o := workerOpts{PlaybookDir: dir, Extra: "jobs_file: " + jobsFile + "\n" + extra}
	wp := startWorker(t, ns.url, o)
	return &namedJobs{url: ns.url, cfg: writeConfig(t, ns.url, o), jobsFile: jobsFile, mqttPort: ns.mqttPort, wp: wp,
		c: connectClient(t, ns.url)}
}

// responses reads the responses to requestID from ANSIBLE_RESPONSES, from
// the start, until the final one (success or failure) or the deadline.
func (nj *namedJobs) responses(t *testing.T, requestID string) ([]schemas.JobResponse, []schemas.RequestFormat) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cons, err := nj.c.js.OrderedConsumer(ctx, jsbridge.ResponsesStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"ansible.production.responses"}})
	require.NoError(t, err)
	var got []schemas.JobResponse
	var formats []schemas.RequestFormat
	for ctx.Err() == nil {
		m, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			continue
		}
		r, f, err := schemas.ParseJobResponse(m.Data())
		require.NoError(t, err, "%s", m.Data())
		if r.RequestID != requestID {
			continue
		}
		got, formats = append(got, r), append(formats, f)
		if r.Result == schemas.ResultSuccess || r.Result == schemas.ResultFailure {
			return got, formats
		}
	}
	t.Fatalf("no final response for %s; got %v", requestID, got)
	return nil, nil
}

func results(rs []schemas.JobResponse) []string {
	var out []string
	for _, r := range rs {
		if len(out) == 0 || out[len(out)-1] != r.Result || r.Result != schemas.ResultWorking {
			out = append(out, r.Result)
		}
	}
	return out
}

// A two-playbook job runs both in order: the second playbook's set_stats
// are in the output, its parameters arrive as data, the events count on
// from the first playbook, and the JSON request gets JSON responses:
// started, working, success with the recap.
func TestNamedJobRunsItsPlaybooksInOrder(t *testing.T) {
	t.Parallel()
	nj := newNamedJobs(t, "")
	_, stderr, code := runCLI(t, "submit", "-c", nj.cfg, "--job", "deploy", "--task-id", "dep-1",
		"--parameters", `{"version": "1.2", "cmd": "{{ lookup('pipe', 'id') }}"}`, "--wait")
	require.Equal(t, 0, code, stderr)

	st := nj.c.waitFinal(t, "production", "dep-1", time.Second)
	require.Equal(t, schemas.StateSuccess, st.State)
	require.Equal(t, "deploy", st.Output["stage"], "the second playbook's set_stats")
	require.Equal(t, true, st.Output["prepared"], "the first one's stay")
	require.Equal(t, 4, st.TasksOK, "the counts of both playbooks")
	require.Equal(t, map[string]any{"version": "1.2", "cmd": "{{ lookup('pipe', 'id') }}"}, st.Output["parameters"],
		"parameters are data: never templated")

	evs := events(nj.c.runnerMessages(t, "dep-1"))
	var plays []string
	for i, ev := range evs {
		require.Equal(t, i+1, ev.Counter, "one sequence of counters across the playbooks")
		if ev.Event == "playbook_on_play_start" {
			plays = append(plays, strings.TrimSpace(ev.Stdout))
		}
	}
	require.Len(t, plays, 2)
	require.Contains(t, plays[0], "Prepare")
	require.Contains(t, plays[1], "Deploy")

	rs, formats := nj.responses(t, "dep-1")
	require.Equal(t, []string{"started", "working", "success"}, results(rs))
	for i, r := range rs {
		require.Equal(t, "deploy", r.JobName)
		require.Equal(t, schemas.FormatJSON, formats[i], "a JSON request gets JSON")
	}
	require.Contains(t, rs[len(rs)-1].Message, "PLAY RECAP")
	var output strings.Builder
	for _, r := range rs {
		if r.Result == schemas.ResultWorking {
			output.WriteString(r.Message + "\n")
		}
	}
	require.Contains(t, output.String(), "TASK [Show the parameters]", "the output, in batches")
}

// A job whose first playbook fails ends failure, saying why, and never
// runs the second.
func TestNamedJobStopsAtTheFirstFailure(t *testing.T) {
	t.Parallel()
	nj := newNamedJobs(t, "")
	jsPub(t, nj.url, "ansible.production.tasks", "brk-1", `{"task_id": "brk-1", "job": "broken"}`)
	rs, _ := nj.responses(t, "brk-1")
	final := rs[len(rs)-1]
	require.Equal(t, schemas.ResultFailure, final.Result)
	require.Contains(t, final.Message, "disk is full")
	st := nj.c.waitFinal(t, "production", "brk-1", 10*time.Second)
	require.Equal(t, schemas.StateFailed, st.State)
	for _, ev := range events(nj.c.runnerMessages(t, "brk-1")) {
		require.NotContains(t, ev.Stdout, "Deploy", "the second playbook never runs")
	}
}

// Seed 003's request, in YAML as its listener reads it, gets YAML
// responses; a consumer that comes after the job ended reads them all.
func TestNamedJobSeedYAMLRequest(t *testing.T) {
	t.Parallel()
	nj := newNamedJobs(t, "")
	req := `---
deploy:  # Job name (the same as in the jobs file)
  request_id: 7f23b8ae-3e06-405c-9131-f133aaa12c96  # Unique Id
  parameters:
  - param1
  - param2
  - "{{ 7 * 6 }}"
`
	// From stdin, as a file would go: a body that starts with "-" is a
	// flag on the command line.
	out, err := natsCLIStdin(t, nj.url, req, "pub", "--jetstream", "ansible.production.tasks")
	require.NoError(t, err, out)
	st := nj.c.waitFinal(t, "production", "7f23b8ae-3e06-405c-9131-f133aaa12c96", 90*time.Second)
	require.Equal(t, schemas.StateSuccess, st.State, st.Err())
	require.Equal(t, []any{"param1", "param2", "{{ 7 * 6 }}"}, st.Output["parameters"])

	rs, formats := nj.responses(t, "7f23b8ae-3e06-405c-9131-f133aaa12c96") // after the end
	require.Equal(t, "started", rs[0].Result)
	require.Equal(t, "success", rs[len(rs)-1].Result)
	for _, f := range formats {
		require.Equal(t, schemas.FormatYAML, f, "a YAML request gets YAML")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := nj.c.js.Stream(ctx, jsbridge.ResponsesStream)
	require.NoError(t, err)
	first, err := stream.GetMsg(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, "application/yaml", first.Header.Get("Content-Type"))
	raw := string(first.Data)
	require.True(t, strings.HasPrefix(raw, "---\njob_name: deploy\nrequest_id: 7f23b8ae-3e06-405c-9131-f133aaa12c96\nresult: started\n"), raw)
}

// Over MQTT (nats-server's listener): a seed-003 request published on the
// task topic runs, and an MQTT subscriber of the responses topic sees its
// answers in YAML.
func TestNamedJobOverMQTT(t *testing.T) {
	t.Parallel()
	nj := newNamedJobs(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sub := exec.CommandContext(ctx, "mosquitto_sub", "-V", "mqttv311", "-h", "127.0.0.1", "-p", strconv.Itoa(nj.mqttPort),
		"-q", "1", "-t", "ansible/production/responses", "-t", "ansible/production/probe")
	out, err := sub.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, sub.Start())
	defer func() { _ = sub.Process.Kill(); _ = sub.Wait() }()
	seen, subscribed := make(chan string, 1), make(chan struct{})
	listening := subscribed
	go func() {
		var all strings.Builder
		s := bufio.NewScanner(out)
		for s.Scan() {
			if s.Text() == "probe" && subscribed != nil {
				close(subscribed) // both topics are subscribed at once
				subscribed = nil
				continue
			}
			all.WriteString(s.Text() + "\n")
			if s.Text() == "result: success" || s.Text() == "result: failure" {
				seen <- all.String()
				return
			}
		}
		seen <- all.String()
	}()
	checkFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		select {
		case <-listening:
			return nil
		default:
			require.NoError(t, nj.c.nc.Publish("ansible.production.probe", []byte("probe")))
			return errors.New("mosquitto_sub is not listening yet")
		}
	})
	mqttPub(t, nj.mqttPort, "mqttv311", 1, "ansible/production/tasks", "deploy:\n  request_id: mqtt-1\n")
	got := <-seen
	require.Contains(t, got, "job_name: deploy\nrequest_id: mqtt-1\nresult: started", got)
	require.Contains(t, got, "result: success", got)
}

// What cannot run is answered with a failure that says why.
func TestNamedJobRefusals(t *testing.T) {
	t.Parallel()
	nj := newNamedJobs(t, "")
	for _, tc := range []struct{ id, req, want string }{
		{"unk-1", `{"nosuch": {"request_id": "unk-1"}}`, `job "nosuch" is not in the worker's jobs file`},
		{"two-1", "a: {request_id: two-1}\nb: {request_id: two-2}\n", "one job per request"},
		{"bad id!", `{"deploy": {"request_id": "bad id!"}}`, "request_id"},
		{"strict-1", `{"strict": {"request_id": "strict-1", "parameters": {"other": 1}}}`, `"other" not accepted`},
	} {
		out, err := natsCLIStdin(t, nj.url, tc.req, "pub", "--jetstream", "ansible.production.tasks")
		require.NoError(t, err, out)
		rs, _ := nj.responses(t, tc.id)
		require.Len(t, rs, 1, tc.id)
		require.Equal(t, schemas.ResultFailure, rs[0].Result, tc.id)
		require.Contains(t, rs[0].Message, tc.want, tc.id)
	}
}

// A group with allow_playbooks: false runs named jobs only.
func TestNamedJobsOnlyGroupRefusesPlaybooks(t *testing.T) {
	t.Parallel()
	nj := newNamedJobs(t, "allow_playbooks: false\n")
	_, stderr, code := runCLI(t, "submit", "-c", nj.cfg, "-p", "deploy.yml", "-i", "inventory/hosts", "--wait")
	require.Equal(t, 1, code, stderr)
	require.Contains(t, stderr, "this group runs named jobs only (worker.allow_playbooks: false)")
	_, stderr, code = runCLI(t, "submit", "-c", nj.cfg, "--job", "deploy", "--wait")
	require.Equal(t, 0, code, stderr)
}

// SIGHUP reads the jobs file again; a broken one leaves the jobs as they
// were, and the worker goes on.
func TestNamedJobsReloadOnSIGHUP(t *testing.T) {
	t.Parallel()
	nj := newNamedJobs(t, "")
	b, err := os.ReadFile(nj.jobsFile)
	require.NoError(t, err)
	added := string(b) + "again:\n  playbooks: [deploy.yml]\n  inventory: inventory/hosts\n"
	require.NoError(t, os.WriteFile(nj.jobsFile, []byte(added), 0o600))
	require.NoError(t, nj.wp.cmd.Process.Signal(syscall.SIGHUP))
	checkFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if !strings.Contains(nj.wp.logs.String(), "jobs file reloaded") {
			return os.ErrNotExist
		}
		return nil
	})
	_, stderr, code := runCLI(t, "submit", "-c", nj.cfg, "--job", "again", "--wait")
	require.Equal(t, 0, code, stderr)

	require.NoError(t, os.WriteFile(nj.jobsFile, []byte("again:\n  playbooks: [missing.yml]\n"), 0o600))
	require.NoError(t, nj.wp.cmd.Process.Signal(syscall.SIGHUP))
	checkFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if !strings.Contains(nj.wp.logs.String(), "jobs file not reloaded") {
			return os.ErrNotExist
		}
		return nil
	})
	require.Contains(t, nj.wp.logs.String(), "missing.yml does not exist")
	_, stderr, code = runCLI(t, "submit", "-c", nj.cfg, "--job", "deploy", "--wait")
	require.Equal(t, 0, code, "the old jobs stay: %s", stderr)
}

// validate reports every problem of a jobs file, with its line.
func TestNamedJobsValidate(t *testing.T) {
	t.Parallel()
	dir, err := filepath.Abs("testdata/jobs")
	require.NoError(t, err)
	jobsFile := filepath.Join(t.TempDir(), "jobs.yml")
	require.NoError(t, os.WriteFile(jobsFile, []byte("ok:\n  playbooks: [deploy.yml]\nbad:\n  playbooks: [missing.yml]\n  colour: red\n"), 0o600))
	cfg := writeConfig(t, "nats://127.0.0.1:1", workerOpts{PlaybookDir: dir, Extra: "jobs_file: " + jobsFile + "\n"})
	_, stderr, code := runCLI(t, "validate", "-c", cfg)
	require.Equal(t, 2, code, stderr)
	require.Contains(t, stderr, jobsFile+":4: job bad: playbooks[0]: missing.yml does not exist")
	require.Contains(t, stderr, jobsFile+`:5: job bad: unknown key "colour"`)
}
