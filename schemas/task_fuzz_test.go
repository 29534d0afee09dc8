package schemas

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas/jsonschema/validate"
)

// taskRequestSeeds are the seeds of FuzzParseTaskRequest: every form of
// task, and the ways each can be wrong.
var taskRequestSeeds = []string{
	seedExample,
	minimalRequest,
	``,
	`{}`,
	`[]`,
	`null`,
	`"x"`,
	`{"task_id":"t1","playbook":"site.yml","inventory":"web1,web2,","limit":"web1","tags":["a","b"],"skip_tags":["c"],"verbosity":4,"check_mode":true,"diff_mode":true,"forks":1,"timeout":60,"git_pull":true}`,
	`{"task_id":"t1","playbook":"site.yml","inventory":"hosts","extra_vars":{"big":9007199254740993,"f":1.5e300,"n":null,"l":[1,[2],{"a":{}}],"s":"{{ x }}"}}`,
	`{"task_id":"t1","playbook":"site.yml","inventory":"hosts","extra_vars":null,"limit":null,"tags":null,"skip_tags":null,"verbosity":null,"forks":null,"timeout":null}`,
	`{"task_id":"t1","playbook":"-x","inventory":"--list","limit":"-l","tags":["-t"],"skip_tags":["--s"]}`,
	`{"task_id":"t1","playbook":"site.yml","inventory":"hosts","verbosity":1.0,"forks":1e1,"timeout":3e9}`,
	`{"task_id":"t1","playbook":"site.yml","inventory":"hosts","verbosity":"1","forks":"5"}`,
	`{"task_id":"a.b","playbook":5,"inventory":[],"bogus":1}`,
	`{"task_id":"t1","playbook":"site.yml","inventory":"hosts"}]`,
	`{"task_id":"t1","playbook":"site.yml","inventory":"hosts"} {}`,
	`{"task_id":"t1","task_id":"t2","playbook":"a","inventory":"b"}`,
	`{"task_id":"t1","playbook":"a\u0000","inventory":"b\n","tags":["",null,"x,y"]}`,
	`{"task_id":"t1","playbook":"\ud800","inventory":"\u00e9<>&","extra_vars":{"\u2028":"\ufeff"}}`,
	"{\"task_id\":\"t1\",\"playbook\":\"a\xff\",\"inventory\":\"b\"}",
	"\u00a0{\"task_id\":\"t1\",\"playbook\":\"a\",\"inventory\":\"b\"}",
	`{"task_id":"` + strings.Repeat("a", 128) + `","playbook":"a","inventory":"b"}`,
	`{"task_id":"` + strings.Repeat("a", 129) + `","playbook":"a","inventory":"b"}`,
	`{"task_id":"t1","playbook":"a","inventory":"b","forks":-0,"verbosity":-1,"timeout":0}`,
	`{"task_id":"t1","playbook":"a","inventory":"b","forks":2147483647,"timeout":2147483648}`,
	`{"task_id":"t1","playbook":"a","inventory":"b","extra_vars":[[[[[[[[[[]]]]]]]]]]}`,
	runnerJobRequest,
	`{"task_id":"t1","runner_job":{"kwargs":{"playbook":"site.yml","ident":"abc","forks":2}},"timeout":60}`,
	`{"task_id":"t1","runner_job":{"kwargs":{}},"playbook":null,"inventory":null,"extra_vars":null,"limit":null,"tags":null,"skip_tags":null,"verbosity":null,"check_mode":null,"diff_mode":null,"forks":null,"git_pull":null,"timeout":null}`,
	`{"task_id":"t1","runner_job":{"kwargs":{ "a" : [1, 2.50, "<&>\u2028"] ,"b":{"c":null}}}}`,
	`{"task_id":"t1","runner_job":{"kwargs":{}},"playbook":"site.yml","inventory":"hosts","forks":5,"git_pull":false}`,
	`{"task_id":"t1","runner_job":{"kwargs":{}},"extra_vars":{},"tags":[],"limit":"","check_mode":false}`,
	`{"task_id":"t1","runner_job":"site.yml"}`,
	`{"task_id":"t1","runner_job":[{"kwargs":{}}],"playbook":"a","inventory":"b"}`,
	`{"task_id":"t1","runner_job":0,"playbook":"a","inventory":"b"}`,
	`{"task_id":"t1","runner_job":false}`,
	`{"task_id":"t1","runner_job":{}}`,
	`{"task_id":"t1","runner_job":{"kwargs":null}}`,
	`{"task_id":"t1","runner_job":{"kwargs":[]}}`,
	`{"task_id":"t1","runner_job":{"kwargs":{},"x":1}}`,
	`{"task_id":"t1","runner_job":null,"playbook":"a","inventory":"b"}`,
	`{"task_id":"t1","runner_job":null}`,
	`{"task_id":"t1","runner_job":{"kwargs":{}},"runner_job":null,"playbook":"a","inventory":"b"}`,
	`{"runner_job":{"kwargs":{}},"timeout":0}`,
	jobRequest,
	`{"task_id":"t1","job":"deploy","parameters":["param1","param2",{"big":9007199254740993,"f":1.50e-3}],"extra_vars":{"a":1},"limit":"web1","tags":["x"],"verbosity":1,"forks":2,"timeout":9,"check_mode":true,"diff_mode":true,"git_pull":true}`,
	`{"task_id":"t1","job":"deploy","parameters":"x","playbook":null,"inventory":null,"runner_job":null}`,
	`{"task_id":"t1","job":"deploy","playbook":"site.yml","inventory":"hosts"}`,
	`{"task_id":"t1","job":"deploy","runner_job":{"kwargs":{}}}`,
	`{"task_id":"t1","job":null,"playbook":"a","inventory":"b","parameters":[]}`,
	`{"task_id":"t1","playbook":"a","inventory":"b","parameters":null}`,
	`{"task_id":"t1","runner_job":{"kwargs":{}},"parameters":1}`,
	`{"task_id":"t1","job":".x"}`,
	`{"task_id":"t1","job":5,"parameters":{}}`,
	`{"task_id":"t1","job":"","parameters":{}}`,
	`{"task_id":"t1","job":"a","parameters":-0.0e-0}`,
}

// FuzzParseTaskRequest feeds arbitrary bytes to ParseTaskRequest. It must
// never panic; an id it returns is always valid; the JSON Schema agrees;
// and a request it accepts, a playbook task, a runner job or a named job,
// obeys every documented rule and survives a JSON round trip unchanged.
func FuzzParseTaskRequest(f *testing.F) {
	for _, s := range taskRequestSeeds {
		f.Add([]byte(s))
	}
	v, err := validate.New()
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ParseTaskRequest(data)
		// The published JSON Schema says the same as the parser.
		if agree, why := schemaAgrees(v, data, err); !agree {
			t.Fatalf("JSON Schema and parser disagree on %q: %s", data, why)
		}
		if req.TaskID != "" {
			require.True(t, ValidID(req.TaskID), "returned an invalid id %q", req.TaskID)
		}
		if err != nil {
			require.NotEmpty(t, err.Error())
			return
		}
		require.LessOrEqual(t, len(data), MaxTaskSize)
		require.True(t, ValidID(req.TaskID), "accepted an invalid id %q", req.TaskID)
		require.GreaterOrEqual(t, req.Verbosity, 0)
		require.LessOrEqual(t, req.Verbosity, MaxVerbosity)
		require.GreaterOrEqual(t, req.Forks, 1)
		require.GreaterOrEqual(t, req.Timeout, 0)
		require.NotNil(t, req.ExtraVars)
		require.NotNil(t, req.Tags)
		require.NotNil(t, req.SkipTags)
		switch {
		case req.RunnerJob != nil:
			checkRunnerJob(t, req)
		case req.Job != "":
			checkJobTask(t, req)
		default:
			checkPlaybookTask(t, req)
		}

		b, err := json.Marshal(req)
		require.NoError(t, err)
		again, err := ParseTaskRequest(b)
		require.NoError(t, err, "re-marshalled request refused: %s", b)
		if req.RunnerJob != nil && again.RunnerJob != nil {
			// Marshalling escapes <, > and & in the kwargs: the same JSON,
			// other bytes. Written again, they must match.
			first, err := json.Marshal(req.RunnerJob)
			require.NoError(t, err)
			second, err := json.Marshal(again.RunnerJob)
			require.NoError(t, err)
			require.Equal(t, string(first), string(second))
			again.RunnerJob.Kwargs = req.RunnerJob.Kwargs
		}
		require.Equal(t, req, again)
	})
}

// checkRunnerJob checks an accepted runner job: kwargs an object, on one
// line, and every other run option at its default.
func checkRunnerJob(t *testing.T, req TaskRequest) {
	t.Helper()
	kw := req.RunnerJob.Kwargs
	require.True(t, json.Valid(kw), "kwargs %q", kw)
	require.Equal(t, byte('{'), kw[0], "kwargs %q", kw)
	require.NotContains(t, string(kw), "\n", "kwargs are compact")
	require.Equal(t, TaskRequest{TaskID: req.TaskID, ExtraVars: map[string]any{}, Tags: []string{}, SkipTags: []string{},
		Forks: DefaultForks, Timeout: req.Timeout, RunnerJob: req.RunnerJob}, req)
}

// checkJobTask checks an accepted named job: a valid name, no playbook or
// inventory; its other options follow the ordinary rules.
func checkJobTask(t *testing.T, req TaskRequest) {
	t.Helper()
	require.True(t, ValidJobName(req.Job), "accepted job %q", req.Job)
	require.Empty(t, req.Playbook)
	require.Empty(t, req.Inventory)
	checkOptions(t, req)
}

// checkPlaybookTask checks an accepted ordinary task against every
// documented rule.
func checkPlaybookTask(t *testing.T, req TaskRequest) {
	t.Helper()
	require.NotEmpty(t, req.Playbook)
	require.NotEmpty(t, req.Inventory)
	require.Nil(t, req.Parameters, "parameters go only with a job")
	checkOptions(t, req)
}

// checkOptions checks the strings of an accepted task.
func checkOptions(t *testing.T, req TaskRequest) {
	t.Helper()
	for _, v := range []string{req.Playbook, req.Inventory, req.Limit} {
		require.False(t, strings.HasPrefix(v, "-"), "accepted an option-like value %q", v)
		require.False(t, strings.ContainsAny(v, "\x00\r\n"), "accepted a line break or NUL in %q", v)
	}
	for _, tag := range append(append([]string{}, req.Tags...), req.SkipTags...) {
		require.NotEmpty(t, tag)
		require.False(t, strings.HasPrefix(tag, "-"), "accepted an option-like tag %q", tag)
		require.False(t, strings.ContainsAny(tag, ",\x00\r\n"), "accepted tag %q", tag)
	}
}
