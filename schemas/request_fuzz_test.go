package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/ansible-worker/ansible-worker/schemas/jsonschema/validate"
)

// FuzzParseRequest feeds arbitrary bytes to ParseRequest. It must never
// panic; an id it returns is valid; the JSON Schema of a JSON request's
// form agrees; Named holds what was written; a JSON task is what
// ParseTaskRequest makes of it; and an accepted request, written again
// with Encode, reads back the same.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		seedRequest,
		minimalRequest,
		jobRequest,
		runnerJobRequest,
		`{"test_job_1":{"request_id":"` + seedUUID + `","parameters":["param1",{"big":9007199254740993,"f":1.50}]}}`,
		`{"deploy":{"request_id":"r1","parameters":null}}`,
		"deploy: {request_id: r1, parameters: [yes, 0x1F, 1:30, 1.5, 1e3, ~, '1.0', 2001-12-14, !!str 5]}",
		"deploy:\n  request_id: r1\n  parameters:\n    a: &x [1, {b: c}]\n    b: *x\n    <<: {m: 1}\n",
		"deploy:\n  request_id: r1\n  parameters: |+\n    text\n\n",
		"deploy: {request_id: 12345}", "123: {request_id: r1}", "deploy: {request_id: 2024-01-05}",
		"a: {request_id: r1}\nb: {request_id: r2}\n", "deploy: [r1]", "deploy: {request_id: r1, x: 1}",
		"task_id: t1\nplaybook: site.yml\n", `{"task_id":"t1","playbook":"site.yml",}`,
		"deploy: {request_id: r1, parameters: {1: x}}", "deploy: {request_id: r1, parameters: .inf}",
		"deploy: {request_id: r1, parameters: &a [*a]}", "deploy: {request_id: r1, parameters: !!set {a}}",
		"a: 1\n---\nb: 2\n", "", "---\n", "- a", "\t", "{}", "[]", "null", `"x"`, "\ufeffdeploy: {request_id: r1}",
		"'yes': {request_id: \"no\", parameters: \"\\L\\N\\x85\"}",
	} {
		f.Add([]byte(s))
	}
	v, err := validate.New()
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRequest(data)
		if agree, why := requestSchemaAgrees(v, data, err); !agree {
			t.Fatalf("JSON Schema and parser disagree on %q: %s", data, why)
		}
		require.Contains(t, []RequestFormat{FormatJSON, FormatYAML}, r.Format)
		if r.Task.TaskID != "" {
			require.True(t, ValidID(r.Task.TaskID), "returned an invalid id %q", r.Task.TaskID)
		}
		if r.Task.Job != "" {
			require.True(t, ValidJobName(r.Task.Job), "returned an invalid job %q", r.Task.Job)
		}
		if r.Named != nil {
			require.Contains(t, writtenJobs(t, data), *r.Named, "Named holds what was written")
		}
		if err != nil {
			require.NotEmpty(t, err.Error())
			if !bytes.Contains(data, []byte("*")) {
				// Without aliases, the expansion bounds are never met.
				require.NotContains(t, err.Error(), "aliases expanding", "%q", data)
			}
			return
		}
		checkAccepted(t, data, r)
		b, err := r.Encode()
		require.NoError(t, err)
		again, err := ParseRequest(b)
		require.NoError(t, err, "re-encoded request refused: %s", b)
		if r.Task.RunnerJob != nil && again.Task.RunnerJob != nil {
			// Marshalling escapes <, > and & in the kwargs: other bytes,
			// the same JSON.
			require.JSONEq(t, string(r.Task.RunnerJob.Kwargs), string(again.Task.RunnerJob.Kwargs))
			again.Task.RunnerJob = r.Task.RunnerJob
		}
		require.Equal(t, r, again, "re-encoded as %s", b)
	})
}

// checkAccepted checks an accepted request: a JSON task is
// ParseTaskRequest's; a seed-003 request is a named job with every
// default.
func checkAccepted(t *testing.T, data []byte, r Request) {
	t.Helper()
	require.True(t, ValidID(r.Task.TaskID), "accepted an invalid id %q", r.Task.TaskID)
	if r.Named == nil {
		require.Equal(t, FormatJSON, r.Format)
		task, err := ParseTaskRequest(data)
		require.NoError(t, err)
		require.Equal(t, task, r.Task)
		return
	}
	require.Equal(t, NamedRequest{JobName: r.Task.Job, RequestID: r.Task.TaskID}, *r.Named)
	require.Equal(t, namedTask(r.Named.JobName, r.Named.RequestID, r.Task.Parameters), r.Task)
	require.True(t, ValidJobName(r.Task.Job), "accepted job %q", r.Task.Job)
	_, err := json.Marshal(r.Task.Parameters)
	require.NoError(t, err, "parameters are JSON data")
}

// writtenJobs lists the top-level keys of a request and the request_id
// of each, as written (a scalar's text; "" when there is none), to check
// Named against. A key written twice counts once, with its last value.
func writtenJobs(t *testing.T, data []byte) []NamedRequest {
	t.Helper()
	trimmed := bytes.Trim(data, " \t\r\n")
	if json.Valid(trimmed) {
		top, err := decodeJSON(trimmed)
		require.NoError(t, err)
		var out []NamedRequest
		for name, body := range top.(map[string]any) {
			id := ""
			if m, ok := body.(map[string]any); ok {
				switch x := m["request_id"].(type) {
				case string, json.Number, bool:
					id = fmt.Sprint(x)
				}
			}
			out = append(out, NamedRequest{JobName: name, RequestID: id})
		}
		return out
	}
	doc, err := parseYAMLDocument(data)
	require.NoError(t, err)
	root := yamlDeref(doc)
	require.Equal(t, yaml.MappingNode, root.Kind)
	var out []NamedRequest
	for i := 0; i+1 < len(root.Content); i += 2 {
		out = append(out, NamedRequest{JobName: yamlDeref(root.Content[i]).Value, RequestID: writtenID(root.Content[i+1])})
	}
	return out
}

// writtenID is the text of the last request_id of a YAML job, "" when
// there is none or it is not a scalar other than null.
func writtenID(body *yaml.Node) string {
	body = yamlDeref(body)
	id := ""
	if body == nil || body.Kind != yaml.MappingNode {
		return id
	}
	for i := 0; i+1 < len(body.Content); i += 2 {
		k, v := yamlDeref(body.Content[i]), yamlDeref(body.Content[i+1])
		if k.Kind != yaml.ScalarNode || k.Value != "request_id" {
			continue
		}
		id = ""
		if x, err := yaml11Scalar(v); v.Kind == yaml.ScalarNode && (x != nil || err != nil) {
			id = v.Value
		}
	}
	return id
}

// FuzzJobResponse writes responses in both formats and reads them back:
// every valid response comes back the same; an invalid one is refused.
func FuzzJobResponse(f *testing.F) {
	for i, s := range trickyStrings {
		f.Add("test_job_1", seedUUID, s, uint8(i))
		f.Add(s, s, "Everything was A-OK", uint8(i))
	}
	f.Add("j", "r", "m", uint8(255))
	f.Fuzz(func(t *testing.T, job, id, message string, result uint8) {
		r := JobResponse{JobName: job, RequestID: id, Result: results[int(result)%len(results)], Message: message}
		if result >= 252 {
			r.Result = message // usually not a result
		}
		valid := utf8.ValidString(job) && utf8.ValidString(id) && utf8.ValidString(message) && slices.Contains(results, r.Result)
		for _, format := range []RequestFormat{FormatJSON, FormatYAML} {
			b, err := r.Encode(format)
			if !valid {
				require.Error(t, err)
				continue
			}
			require.NoError(t, err)
			got, gotFormat, err := ParseJobResponse(b)
			if len(b) > MaxTaskSize {
				require.Error(t, err)
				continue
			}
			require.NoError(t, err, "%s", b)
			require.Equal(t, format, gotFormat)
			require.Equal(t, r, got, "%s", b)
		}
	})
}
