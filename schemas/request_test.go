package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// seedRequest is seed 003's example request message, as its README shows
// it (without the README's indentation).
const seedRequest = `---
test_job_1:  # Job name (This is the same as the name defined in the jobs config.)
  request_id: 7f23b8ae-3e06-405c-9131-f133aaa12c96  # Unique Id
  parameters:
  - param1
  - param2
  - param3
`

// seedUUID is the request id of seedRequest.
const seedUUID = "7f23b8ae-3e06-405c-9131-f133aaa12c96"

// namedTask is what a seed-003 request of job, id and parameters runs.
func namedTask(job, id string, params any) TaskRequest {
	t := newTask()
	t.TaskID, t.Job, t.Parameters = id, job, params
	return t
}

func TestParseRequestSeedExample(t *testing.T) {
	t.Parallel()
	got, err := ParseRequest([]byte(seedRequest))
	require.NoError(t, err)
	require.Equal(t, Request{
		Task:   namedTask("test_job_1", seedUUID, []any{"param1", "param2", "param3"}),
		Named:  &NamedRequest{JobName: "test_job_1", RequestID: seedUUID},
		Format: FormatYAML,
	}, got)

	// Written again, it is the seed's message without its comments.
	b, err := got.Encode()
	require.NoError(t, err)
	require.Equal(t, "---\ntest_job_1:\n  request_id: "+seedUUID+"\n  parameters:\n  - param1\n  - param2\n  - param3\n", string(b))
	again, err := ParseRequest(b)
	require.NoError(t, err)
	require.Equal(t, got, again)
}

// Every form and format reads into the same kind of Request.
func TestParseRequestForms(t *testing.T) {
	t.Parallel()
	named := func(f RequestFormat, job, id string, params any) Request {
		return Request{Task: namedTask(job, id, params), Named: &NamedRequest{JobName: job, RequestID: id}, Format: f}
	}
	task := defaultRequest()
	jobTask := jobDefaults()
	jobTask.Parameters = map[string]any{"n": json.Number("1")}
	for _, tc := range []struct {
		name, input string
		want        Request
	}{
		{"JSON task", minimalRequest, Request{Task: task, Format: FormatJSON}},
		{"JSON task, white space", "\n\t " + minimalRequest + "\r\n", Request{Task: task, Format: FormatJSON}},
		{"JSON task with job", `{"task_id":"t1","job":"deploy","parameters":{"n":1}}`, Request{Task: jobTask, Format: FormatJSON}},
		{"JSON named", `{"test_job_1":{"request_id":"` + seedUUID + `","parameters":["param1",{"big":9007199254740993}]}}`,
			named(FormatJSON, "test_job_1", seedUUID, []any{"param1", map[string]any{"big": json.Number("9007199254740993")}})},
		{"JSON named, no parameters", ` {"deploy": {"request_id": "r1"}} `, named(FormatJSON, "deploy", "r1", nil)},
		{"JSON named, null parameters", `{"deploy":{"request_id":"r1","parameters":null}}`, named(FormatJSON, "deploy", "r1", nil)},
		{"YAML flow", `{deploy: {request_id: r1}}`, named(FormatYAML, "deploy", "r1", nil)},
		{"YAML without ---", "deploy:\n  request_id: r1\n  parameters: x\n", named(FormatYAML, "deploy", "r1", "x")},
		{"YAML quoted id", "deploy: {request_id: '12345', parameters: null}\n", named(FormatYAML, "deploy", "12345", nil)},
		{"YAML quoted name", "'1.0': {request_id: \"yes\"}\n", named(FormatYAML, "1.0", "yes", nil)},
		{"YAML end marker", "---\ndeploy: {request_id: r1}\n...\n", named(FormatYAML, "deploy", "r1", nil)},
		{"YAML byte order mark", "\ufeffdeploy: {request_id: r1}\n", named(FormatYAML, "deploy", "r1", nil)},
		{"YAML name set twice", "deploy: {request_id: r1}\ndeploy: {request_id: r2}\n", named(FormatYAML, "deploy", "r2", nil)},
		{"YAML aliases", "deploy:\n  request_id: r1\n  parameters:\n    a: &id001 [1, 2]\n    b: *id001\n",
			named(FormatYAML, "deploy", "r1", map[string]any{"a": []any{json.Number("1"), json.Number("2")},
				"b": []any{json.Number("1"), json.Number("2")}})},
		{"YAML id alias", "deploy: {parameters: &i r1, request_id: *i}\n", named(FormatYAML, "deploy", "r1", "r1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseRequest([]byte(tc.input))
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			if tc.want.Named == nil {
				direct, err := ParseTaskRequest([]byte(tc.input))
				require.NoError(t, err)
				require.Equal(t, direct, got.Task, "the JSON task form is ParseTaskRequest's")
			}
			b, err := got.Encode()
			require.NoError(t, err)
			again, err := ParseRequest(b)
			require.NoError(t, err, "%s", b)
			require.Equal(t, got, again, "%s", b)
		})
	}
}

// Parameters are read as yaml.safe_load reads them, into JSON data:
// numbers exact, YAML 1.1's booleans and numbers, strings otherwise.
func TestParseRequestParameters(t *testing.T) {
	t.Parallel()
	in := `deploy:
  request_id: r1
  parameters:
    flags: [yes, No, on, OFF, y, n, true]
    ints: [0755, 0x1F, 0b101, 1_000, 1:30, -0, 12345678901234567890, 0o17]
    floats: [1.5, 1.0e+16, 1e3, .5, 1:30.5, 1.]
    nothing: [~, null, ]
    text:
    - 'yes'
    - "1.0"
    - 2001-12-14
    - "a\tb"
    - |
      multi
      line
    nested: {a: {b: [{c: d}]}}
`
	got, err := ParseRequest([]byte(in))
	require.NoError(t, err)
	n := func(s string) json.Number { return json.Number(s) }
	want := map[string]any{
		"flags":   []any{true, false, true, false, "y", "n", true},
		"ints":    []any{n("493"), n("31"), n("5"), n("1000"), n("90"), n("0"), n("12345678901234567890"), "0o17"},
		"floats":  []any{n("1.5"), n("1e+16"), "1e3", n("0.5"), n("90.5"), n("1.0")},
		"nothing": []any{nil, nil},
		"text":    []any{"yes", "1.0", "2001-12-14", "a\tb", "multi\nline\n"},
		"nested":  map[string]any{"a": map[string]any{"b": []any{map[string]any{"c": "d"}}}},
	}
	require.Equal(t, want, got.Task.Parameters)

	// Python reads the same (dates aside, which JSON has no type for).
	py := pySafeLoad(t, []string{in})[0].(map[string]any)["deploy"].(map[string]any)["parameters"]
	require.Equal(t, py, asJSON(t, got.Task.Parameters))

	// Written again as YAML, Python and ParseRequest read the same values.
	b, err := got.Encode()
	require.NoError(t, err)
	again, err := ParseRequest(b)
	require.NoError(t, err, "%s", b)
	require.Equal(t, got, again)
	py = pySafeLoad(t, []string{string(b)})[0].(map[string]any)["deploy"].(map[string]any)["parameters"]
	require.Equal(t, py, asJSON(t, got.Task.Parameters), "%s", b)
}

// requestCase is an invalid request: its problems and what is still read.
type requestCase struct {
	name, input string
	problems    []string
	named       *NamedRequest
	taskID      string
	format      RequestFormat
}

func checkRequestCases(t *testing.T, cases []requestCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseRequest([]byte(tc.input))
			require.Equal(t, tc.problems, problems(t, err))
			require.Equal(t, tc.named, got.Named)
			require.Equal(t, tc.taskID, got.Task.TaskID)
			require.Equal(t, tc.format, got.Format)
		})
	}
}

const namePattern = "may contain only A-Z a-z 0-9 _ . - and must not start with . or -"

// The rules of the seed-003 form; Named is filled as far as it could be
// read, the task id only when it is valid.
func TestParseRequestNamedRules(t *testing.T) {
	t.Parallel()
	y, j := FormatYAML, FormatJSON
	nr := func(job, id string) *NamedRequest { return &NamedRequest{JobName: job, RequestID: id} }
	checkRequestCases(t, []requestCase{
		{"id number", "deploy: {request_id: 12345}", []string{`request_id must be a string, got a number (write it in quotes: "12345")`}, nr("deploy", "12345"), "", y},
		{"id hex", "deploy: {request_id: 0x1F}", []string{`request_id must be a string, got a number (write it in quotes: "0x1F")`}, nr("deploy", "0x1F"), "", y},
		{"id float", "deploy: {request_id: 1.5}", []string{`request_id must be a string, got a number (write it in quotes: "1.5")`}, nr("deploy", "1.5"), "", y},
		{"id boolean", "deploy: {request_id: yes}", []string{`request_id must be a string, got a boolean (write it in quotes: "yes")`}, nr("deploy", "yes"), "", y},
		{"id date", "deploy: {request_id: 2024-01-05}", []string{`request_id must be a string, got a timestamp (write it in quotes: "2024-01-05")`}, nr("deploy", "2024-01-05"), "", y},
		{"id tagged", "deploy: {request_id: !!binary aGk=}", []string{`request_id must be a string, got a value tagged !!binary (write it in quotes: "aGk=")`}, nr("deploy", "aGk="), "", y},
		{"id list", "deploy: {request_id: [r1]}", []string{"request_id must be a string, got a list"}, nr("deploy", ""), "", y},
		{"id missing", "deploy: {parameters: [a]}", []string{"request_id is required"}, nr("deploy", ""), "", y},
		{"id null", "deploy: {request_id: ~}", []string{"request_id is required"}, nr("deploy", ""), "", y},
		{"id invalid", "deploy: {request_id: a.b}", []string{`request_id "a.b" may contain only A-Z a-z 0-9 _ -`}, nr("deploy", "a.b"), "", y},
		{"id empty", "deploy: {request_id: ''}", []string{"request_id is empty"}, nr("deploy", ""), "", y},
		{"id too long", "deploy: {request_id: " + strings.Repeat("r", 129) + "}", []string{"request_id is 129 characters long, the limit is 128"},
			nr("deploy", strings.Repeat("r", 129)), "", y},
		{"JSON id number", `{"deploy":{"request_id":5}}`, []string{"request_id must be a string, got a number"}, nr("deploy", "5"), "", j},
		{"JSON id boolean", `{"deploy":{"request_id":true}}`, []string{"request_id must be a string, got a boolean"}, nr("deploy", "true"), "", j},
		{"JSON id object", `{"deploy":{"request_id":{}}}`, []string{"request_id must be a string, got a mapping"}, nr("deploy", ""), "", j},
		{"unknown keys", "deploy: {request_id: r1, params: [], extra: 1, 1: x}",
			[]string{`unknown fields "1", "extra", "params" (accepted: request_id, parameters)`}, nr("deploy", "r1"), "r1", y},
		{"JSON unknown key", `{"deploy":{"request_id":"r1","Parameters":1}}`,
			[]string{`unknown field "Parameters" (accepted: request_id, parameters)`}, nr("deploy", "r1"), "r1", j},
		{"name invalid", ".hidden: {request_id: r1}", []string{`job name ".hidden" ` + namePattern}, nr(".hidden", "r1"), "r1", y},
		{"name empty", `{"":{"request_id":"r1"}}`, []string{"job name is empty"}, nr("", "r1"), "r1", j},
		{"name number", "123: {request_id: r1}", []string{`job name must be a string, got a number (write it in quotes: "123")`}, nr("123", "r1"), "r1", y},
		{"name boolean", "on: {request_id: r1}", []string{`job name must be a string, got a boolean (write it in quotes: "on")`}, nr("on", "r1"), "r1", y},
		{"name null", "~: {request_id: r1}", []string{`job name must be a string, got null (write it in quotes: "~")`}, nr("~", "r1"), "r1", y},
		{"name list", "? [a]\n: {request_id: r1}\n", []string{"job name must be a string, got a list"}, nil, "r1", y},
		{"name too long", strings.Repeat("j", 129) + ": {request_id: r1}", []string{"job name is 129 characters long, the limit is 128"},
			nr(strings.Repeat("j", 129), "r1"), "r1", y},
		{"value list", "deploy: [r1]", []string{"the job's value must be a mapping {request_id, parameters}, got a list"}, nr("deploy", ""), "", y},
		{"value null", "deploy:\n", []string{"the job's value must be a mapping {request_id, parameters}, got null"}, nr("deploy", ""), "", y},
		{"value string", `{"deploy":"r1"}`, []string{"the job's value must be a mapping {request_id, parameters}, got a string"}, nr("deploy", ""), "", j},
		{"everything wrong", "-x: {request_id: 5, bad: 1}", []string{`job name "-x" ` + namePattern,
			`unknown field "bad" (accepted: request_id, parameters)`, `request_id must be a string, got a number (write it in quotes: "5")`}, nr("-x", "5"), "", y},
		{"two jobs", "b: {request_id: r2}\na: {request_id: r1}\n", []string{"one job per request, got 2: a, b"}, nr("a", "r1"), "", y},
		{"two jobs, first bad", `{"b":{"request_id":"r2"},"a":[]}`, []string{"one job per request, got 2: a, b"}, nr("a", ""), "", j},
		{"many jobs", "{a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9, j: 10, k: 11}",
			[]string{"one job per request, got 11: a, b, c, d, e, f, g, h, i, j, …"}, nr("a", ""), "", y},
	})
}

// What is neither form is refused, saying what a request is.
func TestParseRequestShape(t *testing.T) {
	t.Parallel()
	y, j := FormatYAML, FormatJSON
	shape := requestShape + ", got "
	checkRequestCases(t, []requestCase{
		{"empty", "", []string{shape + "an empty document"}, nil, "", y},
		{"white space", " \n  \n", []string{shape + "an empty document"}, nil, "", y},
		{"comment", "# nothing\n", []string{shape + "an empty document"}, nil, "", y},
		{"document marker", "---\n", []string{shape + "null"}, nil, "", y},
		{"YAML list", "- deploy\n", []string{shape + "a list"}, nil, "", y},
		{"YAML text", "run deploy please", []string{shape + "a string"}, nil, "", y},
		{"YAML number", "0x10", []string{shape + "a number"}, nil, "", y},
		{"JSON array", `[{"task_id":"t1"}]`, []string{shape + "a list"}, nil, "", j},
		{"JSON string", `"deploy"`, []string{shape + "a string"}, nil, "", j},
		{"JSON number", `42`, []string{shape + "a number"}, nil, "", j},
		{"JSON null", `null`, []string{shape + "null"}, nil, "", j},
		{"JSON empty object", `{}`, []string{shape + "an empty mapping"}, nil, "", j},
		{"YAML empty mapping", `{ }` + "\n# x", []string{shape + "an empty mapping"}, nil, "", y},
		{"YAML syntax", "deploy: [r1\n", []string{"a request is not valid JSON or YAML (line 1)"}, nil, "", y},
		{"YAML tab", "\tdeploy: x\n", []string{"a request is not valid JSON or YAML: found character that cannot start any token"}, nil, "", y},
		{"two documents", "a: {request_id: r1}\n---\nb: {request_id: r2}\n", []string{"a request is not valid JSON or YAML: more than one YAML document"}, nil, "", y},
		{"broken JSON", `{"task_id":"t1","playbook":`, []string{"a request is not valid JSON (unexpected EOF) or YAML: line 1: did not find expected node content"}, nil, "", y},
		{"broken JSON object", `{"deploy":{"request_id":"r1"}`, []string{"a request is not valid JSON (unexpected EOF) or YAML (line 1)"}, nil, "", y},
		{"JSON and more", `{"deploy":{"request_id":"r1"}} x`, []string{"a request is not valid JSON (has data after the JSON object) or YAML: more than one YAML document"}, nil, "", y},
	})
}

// A task is JSON: in YAML it is refused, its id kept for the failed status.
func TestParseRequestYAMLTask(t *testing.T) {
	t.Parallel()
	y := FormatYAML
	checkRequestCases(t, []requestCase{
		{"task", "task_id: t1\nplaybook: site.yml\ninventory: hosts\n", []string{yamlTask}, nil, "t1", y},
		{"flow", "{task_id: t1, job: deploy}", []string{yamlTask}, nil, "t1", y},
		{"one field", "playbook: site.yml\n", []string{yamlTask}, nil, "", y},
		{"task field among jobs", "deploy: {request_id: r1}\nparameters: [a]\n", []string{yamlTask}, nil, "", y},
		{"bad id", "task_id: a.b\nplaybook: x\n", []string{yamlTask}, nil, "", y},
		{"number id", "task_id: 12\n", []string{yamlTask}, nil, "", y},
		// JSON that is almost right: the JSON error comes first.
		{"trailing comma", `{"task_id":"t1","playbook":"site.yml","inventory":"hosts",}`,
			[]string{"task request is not valid JSON: invalid character '}' looking for beginning of object key string", yamlTask}, nil, "t1", y},
		// Not JSON at all: the message is YAML's alone.
		{"single quotes", `{'task_id':'t1','playbook':'site.yml','inventory':'hosts'}`, []string{yamlTask}, nil, "t1", y},
		{"byte order mark", "\ufeff" + minimalRequest, []string{"task request is not valid JSON", yamlTask}, nil, "t1", y},
	})
	require.Equal(t, "a task request is JSON; YAML is for named-job requests ({<job>: {request_id, parameters}})", yamlTask)
}

// JSON task errors are ParseTaskRequest's, unchanged.
func TestParseRequestTaskErrors(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		`{"task_id":"t1"}`,
		`{"task_id":"t1","playbook":"a","inventory":"b","bogus":1}`,
		`{"job":"deploy"}`,
		`{"task_id":"t1","job":"deploy","playbook":"a"}`,
		`{"parameters":[]}`,
		minimalRequest + " {}",
	} {
		got, err := ParseRequest([]byte(in))
		task, terr := ParseTaskRequest([]byte(in))
		if strings.HasSuffix(in, "{}") {
			// Not valid JSON (two values): read as YAML, which refuses it.
			require.Error(t, err)
			continue
		}
		require.Equal(t, terr, err, in)
		require.Equal(t, Request{Task: task, Format: FormatJSON}, got, in)
	}
}

// YAML is bounded: what aliases expand to, how deep it nests. The job
// name and request id are still read, for the failure response.
func TestParseRequestYAMLSafety(t *testing.T) {
	t.Parallel()
	head := "deploy:\n  request_id: r1\n  parameters:\n"
	indent := func(s string) string {
		return "    " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n    ") + "\n"
	}
	long := strings.Repeat("x", 1000)
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	nr := &NamedRequest{JobName: "deploy", RequestID: "r1"}
	y := FormatYAML
	checkRequestCases(t, []requestCase{
		{"billion laughs", head + indent(laughs(9)), []string{"parameters: not valid YAML: too many nodes (aliases expanding?)"}, nr, "r1", y},
		{"long alias", head + "    a: &a " + long + "\n    b: [*a, *a]\n",
			[]string{"parameters: not valid YAML: the values hold more than 2148 bytes of text (aliases expanding?)"}, nr, "r1", y},
		{"too deep", head + "    " + deep(100) + "\n", []string{"parameters: not valid YAML: nested more than 100 levels"}, nr, "r1", y},
		{"cycle", head + "    &c [*c]\n", []string{"parameters: not valid YAML: nested more than 100 levels"}, nr, "r1", y},
		{"infinity", head + "    [1, .inf]\n", []string{"parameters: not supported (line 4): inf, which JSON cannot hold"}, nr, "r1", y},
		{"key not a string", head + "    {1: a}\n", []string{"parameters: not supported (line 4): a mapping key that is a number; keys must be strings (quote it)"}, nr, "r1", y},
		{"set", head + "    !!set {a}\n", []string{"parameters: not supported (line 4): a mapping tagged !!set"}, nr, "r1", y},
		{"python tag", head + "    !!python/object:os.system x\n",
			[]string{"parameters: not supported (line 4): a YAML tag other than !!str, !!int, !!float, !!bool, !!null, !!timestamp, !unsafe and !vault"}, nr, "r1", y},
	})
	// Just within the bounds: the top mapping is at depth 0, parameters
	// at 2, so 99 lists reach depth 100.
	got, err := ParseRequest([]byte(head + "    " + deep(99) + "\n"))
	require.NoError(t, err)
	require.Equal(t, "r1", got.Task.TaskID)
	got, err = ParseRequest([]byte(head + "    a: &a " + long + "\n    b: [*a]\n"))
	require.NoError(t, err, "an alias may double the text")
	require.Equal(t, []any{long}, got.Task.Parameters.(map[string]any)["b"])
}

// Size and encoding are checked first, as ParseTaskRequest checks them.
func TestParseRequestSizeAndEncoding(t *testing.T) {
	t.Parallel()
	pad := strings.Repeat("x", MaxTaskSize)
	in := `{"task_id":"big","playbook":"a","inventory":"b","extra_vars":{"p":"` + pad + `"}}`
	got, err := ParseRequest([]byte(in))
	require.EqualError(t, err, fmt.Sprintf("task request is %d bytes, the limit is 1048576", len(in)))
	require.Equal(t, "big", got.Task.TaskID)
	require.Equal(t, FormatJSON, got.Format)
	in = "deploy: {request_id: r1, parameters: " + pad + "}"
	got, err = ParseRequest([]byte(in))
	require.EqualError(t, err, fmt.Sprintf("task request is %d bytes, the limit is 1048576", len(in)))
	require.Nil(t, got.Named)

	// A request of exactly MaxTaskSize bytes is read.
	in = "deploy: {request_id: r1, parameters: x}\n"
	in = strings.Replace(in, "x", strings.Repeat("x", MaxTaskSize-len(in)+1), 1)
	require.Len(t, in, MaxTaskSize)
	got, err = ParseRequest([]byte(in))
	require.NoError(t, err)
	require.Equal(t, "deploy", got.Task.Job)

	// Dense documents, without aliases, are within the expansion bounds:
	// many nodes, or escapes that grow (\L is 2 bytes, U+2028 is 3).
	for _, params := range []string{"[" + strings.Repeat("a,", 500000) + "a]", `"` + strings.Repeat(`\L`, 500000) + `"`} {
		got, err = ParseRequest([]byte("deploy: {request_id: r1, parameters: " + params + "}"))
		require.NoError(t, err)
		require.NotNil(t, got.Task.Parameters)
	}

	_, err = ParseRequest([]byte("deploy: {request_id: r\xff}"))
	require.EqualError(t, err, "task request is not valid UTF-8")
	var inv *InvalidTaskError
	require.False(t, errors.As(err, &inv))
}

// Encode writes what ParseRequest reads back, in each form and format;
// YAML as seed 003 writes it, and as Python reads it.
func TestRequestEncode(t *testing.T) {
	t.Parallel()
	params := map[string]any{"yes": "no", "n": 1.5, "big": json.Number("12345678901234567890"), "e": 1e20,
		"l": []any{nil, true, "", "1.0", "2001-12-14", "multi\nline", " lead", "#x", "é😀\u2028"}, "m": map[string]any{}}
	r := Request{Task: TaskRequest{Parameters: params}, Named: &NamedRequest{JobName: "yes", RequestID: "12345"}, Format: FormatYAML}
	b, err := r.Encode()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(b), "---\n\"yes\":\n  request_id: \"12345\"\n  parameters:\n"), "%s", b)
	got, err := ParseRequest(b)
	require.NoError(t, err, "%s", b)
	want := map[string]any{"yes": "no", "n": json.Number("1.5"), "big": json.Number("12345678901234567890"), "e": json.Number("100000000000000000000"),
		"l": []any{nil, true, "", "1.0", "2001-12-14", "multi\nline", " lead", "#x", "é😀\u2028"}, "m": map[string]any{}}
	require.Equal(t, Request{Task: namedTask("yes", "12345", want), Named: r.Named, Format: FormatYAML}, got)
	py := pySafeLoad(t, []string{string(b)})[0]
	require.Equal(t, map[string]any{"yes": map[string]any{"request_id": "12345", "parameters": asJSON(t, want)}}, py)

	r.Format = FormatJSON
	b, err = r.Encode()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(b), `{"yes":{"request_id":"12345","parameters":{`), "%s", b)
	got, err = ParseRequest(b)
	require.NoError(t, err)
	require.Equal(t, "yes", got.Task.Job)

	_, err = Request{Task: defaultRequest(), Format: FormatYAML}.Encode()
	require.EqualError(t, err, yamlTask)
	_, err = Request{Named: &NamedRequest{}, Format: "xml"}.Encode()
	require.EqualError(t, err, `unknown request format "xml"`)
	_, err = Request{Named: &NamedRequest{}, Task: TaskRequest{Parameters: func() {}}, Format: FormatJSON}.Encode()
	require.ErrorContains(t, err, "parameters: json: unsupported type")
	_, err = Request{Named: &NamedRequest{}, Task: TaskRequest{Parameters: json.Number("1e999")}, Format: FormatYAML}.Encode()
	require.EqualError(t, err, "parameters: the number 1e999 does not fit a float")
}

// A request in seed 003's form, as its SQS listener took it; the failure
// response of a bad one still names its job and request.
func ExampleParseRequest() {
	req, err := ParseRequest([]byte("---\ntest_job_1:\n  request_id: 7f23b8ae-3e06-405c-9131-f133aaa12c96\n  parameters: [param1, 2]\n"))
	if err != nil {
		panic(err)
	}
	fmt.Println(req.Format, req.Task.Job, req.Task.TaskID, req.Task.Parameters)

	bad, err := ParseRequest([]byte("deploy: {request_id: 12345}\n"))
	fmt.Println(err)
	b, _ := JobResponse{JobName: bad.Named.JobName, RequestID: bad.Named.RequestID, Result: ResultFailure,
		Message: err.Error()}.Encode(bad.Format)
	fmt.Print(string(b))
	// Output:
	// yaml test_job_1 7f23b8ae-3e06-405c-9131-f133aaa12c96 [param1 2]
	// invalid task: request_id must be a string, got a number (write it in quotes: "12345")
	// ---
	// job_name: deploy
	// request_id: "12345"
	// result: failure
	// message: |-
	//   invalid task: request_id must be a string, got a number (write it in quotes: "12345")
}
