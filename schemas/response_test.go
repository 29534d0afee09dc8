package schemas

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// seedResponse is seed 003's example response message, as its README
// shows it (without the README's indentation).
const seedResponse = `---
job_name: test_job_1
request_id: 7f23b8ae-3e06-405c-9131-f133aaa12c96
result: success
message: |-
  Everything was A-OK
`

func seedJobResponse() JobResponse {
	return JobResponse{JobName: "test_job_1", RequestID: seedUUID, Result: ResultSuccess, Message: "Everything was A-OK"}
}

// The seed's example is written byte for byte, and read back.
func TestJobResponseSeedExample(t *testing.T) {
	t.Parallel()
	b, err := seedJobResponse().Encode(FormatYAML)
	require.NoError(t, err)
	require.Equal(t, seedResponse, string(b))
	got, f, err := ParseJobResponse([]byte(seedResponse))
	require.NoError(t, err)
	require.Equal(t, FormatYAML, f)
	require.Equal(t, seedJobResponse(), got)

	b, err = seedJobResponse().Encode(FormatJSON)
	require.NoError(t, err)
	require.Equal(t, `{"job_name":"test_job_1","request_id":"`+seedUUID+`","result":"success","message":"Everything was A-OK"}`, string(b))
	got, f, err = ParseJobResponse(b)
	require.NoError(t, err)
	require.Equal(t, FormatJSON, f)
	require.Equal(t, seedJobResponse(), got)
}

// trickyStrings are values YAML could read as something else, or change.
var trickyStrings = []string{
	"", "Everything was A-OK", "a\nb", "a\n", "a\n\n", "\n", "\n\n", " lead", "  \n  x\n", "trail ", "a \nb",
	"\tx", "x\ty", "a\n\tb", "\n\ta", "\t", " ", "\n ", " \n", "x: y # z", "# x", "- a", "? x", "|", ">", "'", "\"", "\\",
	"%x", "@x", "`x", "!x", "&x", "*x", "{", "[", "---", "...", "\n---\n", "a\n---\nb", "a\n...\n", "=", "<<",
	"é ü", "日本語", "😀", "a\x01b", "\x00", "a\rb", "a\r\nb", "\u0085", "a\u0085b", "\u2028", "a\u2029b", "\ufeff", "\u00a0",
	"a\u00a0\nb", "\x7f", "\ud7ff", "\ue000", "\ufffd", "\U0010ffff",
	"yes", "Yes", "NO", "on", "Off", "y", "n", "Y", "true", "False", "null", "Null", "~", "1.0", "12345", "0x1F", "0o17",
	"0b101", "1e3", "1e+3", "1.0e+3", "1:30", "1:30.5", "+1", "-0", ".5", "1_000", "0777", "08", ".inf", "-.Inf", ".NaN",
	"2001-12-14", "2001-12-14 21:59:43.10 -5", "2001-12-14t21:59:43.10-05:00",
	seedUUID, "test_job_1", strings.Repeat("long ", 50), strings.Repeat("x", 200),
}

// Every value comes back the same through Encode and ParseJobResponse in
// both formats, and through Python's yaml.safe_load and json.loads, as
// seed 003's clients read responses.
func TestJobResponseRoundTrip(t *testing.T) {
	t.Parallel()
	var yamlDocs, jsonDocs []string
	var sent []JobResponse
	for i, s := range trickyStrings {
		r := JobResponse{JobName: s, RequestID: s, Result: results[i%len(results)], Message: s}
		sent = append(sent, r)
		for _, f := range []RequestFormat{FormatYAML, FormatJSON} {
			b, err := r.Encode(f)
			require.NoError(t, err)
			got, gotF, err := ParseJobResponse(b)
			require.NoError(t, err, "%q:\n%s", s, b)
			require.Equal(t, f, gotF)
			require.Equal(t, r, got, "%s", b)
			if f == FormatYAML {
				yamlDocs = append(yamlDocs, string(b))
			} else {
				jsonDocs = append(jsonDocs, string(b))
			}
		}
	}
	// safe_load reads JSON too: one call reads both.
	py := pySafeLoad(t, append(yamlDocs, jsonDocs...))
	for i, r := range sent {
		want := map[string]any{"job_name": r.JobName, "request_id": r.RequestID, "result": r.Result, "message": r.Message}
		require.Equal(t, want, py[i], "YAML %q:\n%s", r.Message, yamlDocs[i])
		require.Equal(t, want, py[len(sent)+i], "JSON %q:\n%s", r.Message, jsonDocs[i])
	}
}

// How messages are written: a literal block when one holds the text
// exactly, quoted otherwise.
func TestJobResponseMessageStyle(t *testing.T) {
	t.Parallel()
	for msg, want := range map[string]string{
		"ok":                "message: |-\n  ok\n",
		"line 1\nline 2":    "message: |-\n  line 1\n  line 2\n",
		"ends\n":            "message: |\n  ends\n",
		"ends\n\n":          "message: |+\n  ends\n\n",
		" indented\nnext":   "message: |2-\n   indented\n  next\n",
		"":                  "message: \"\"\n",
		"trailing space ":   "message: \"trailing space \"\n",
		"tab\tinside":       "message: |-\n  tab\tinside\n",
		"carriage\r\nfeed":  "message: \"carriage\\r\\nfeed\"\n",
		"bell\a":            "message: \"bell\\a\"\n",
		"key: value # note": "message: |-\n  key: value # note\n",
	} {
		r := JobResponse{JobName: "j", RequestID: "r", Result: ResultWorking, Message: msg}
		b, err := r.Encode(FormatYAML)
		require.NoError(t, err)
		require.Equal(t, "---\njob_name: j\nrequest_id: r\nresult: working\n"+want, string(b), "%q", msg)
	}
	r := JobResponse{JobName: "yes", RequestID: "12345", Result: ResultStarted, Message: "m"}
	b, err := r.Encode(FormatYAML)
	require.NoError(t, err)
	require.Equal(t, "---\njob_name: \"yes\"\nrequest_id: \"12345\"\nresult: started\nmessage: |-\n  m\n", string(b))
	b, err = JobResponse{Result: ResultFailure, Message: "<&>"}.Encode(FormatJSON)
	require.NoError(t, err)
	require.Equal(t, `{"job_name":"","request_id":"","result":"failure","message":"<&>"}`, string(b))
	// Characters a YAML reader would refuse or fold are escaped in JSON.
	b, err = JobResponse{Result: ResultFailure, Message: "a\u0085b\x7f\u2028\uffffé"}.Encode(FormatJSON)
	require.NoError(t, err)
	require.Equal(t, `{"job_name":"","request_id":"","result":"failure","message":"a\u0085b\u007f\u2028\uffffé"}`, string(b))
}

func TestJobResponseEncodeErrors(t *testing.T) {
	t.Parallel()
	for _, f := range []RequestFormat{FormatJSON, FormatYAML} {
		_, err := JobResponse{Result: "done"}.Encode(f)
		require.EqualError(t, err, `job response: result must be one of started, working, success, failure, got "done"`)
		_, err = JobResponse{Result: ResultSuccess, Message: "a\xffb"}.Encode(f)
		require.EqualError(t, err, "job response: message is not valid UTF-8")
		_, err = JobResponse{Result: ResultSuccess, RequestID: "\xff"}.Encode(f)
		require.EqualError(t, err, "job response: request_id is not valid UTF-8")
	}
	_, err := seedJobResponse().Encode("xml")
	require.EqualError(t, err, `unknown response format "xml"`)
}

func TestParseJobResponseErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, input, want string }{
		{"missing", `{"job_name":"j","result":"success"}`, "job response: request_id is required; message is required"},
		{"not strings", `{"job_name":1,"request_id":null,"result":"success","message":["m"]}`,
			"job response: job_name must be a string, got a number; request_id must be a string, got null; message must be a string, got a list"},
		{"unknown result", `{"job_name":"j","request_id":"r","result":"done","message":""}`,
			`job response: result must be one of started, working, success, failure, got "done"`},
		{"unknown field", `{"job_name":"j","request_id":"r","result":"success","message":"","code":0}`,
			`job response: unknown field "code" (accepted: job_name, request_id, result, message)`},
		{"YAML number", "job_name: j\nrequest_id: 12345\nresult: success\nmessage: m\n", "job response: request_id must be a string, got a number"},
		{"YAML boolean", "job_name: yes\nrequest_id: r\nresult: success\nmessage: m\n", "job response: job_name must be a string, got a boolean"},
		{"YAML empty message", "job_name: j\nrequest_id: r\nresult: success\nmessage:\n", "job response: message must be a string, got null"},
		{"list", "- job_name\n", "job response must be a mapping {job_name, request_id, result, message}, got a list"},
		{"JSON string", `"success"`, "job response must be a mapping {job_name, request_id, result, message}, got a string"},
		{"empty", "", "job response must be a mapping {job_name, request_id, result, message}, got null"},
		{"YAML syntax", "job_name: [\n", "job response: not valid YAML: line 1: did not find expected node content"},
		{"aliases", laughs(9), "job response: not valid YAML: too many nodes (aliases expanding?)"},
		{"not UTF-8", "job_name: \xff", "job response is not valid UTF-8"},
		{"too large", strings.Repeat(" ", MaxTaskSize+1), "job response is 1048577 bytes, the limit is 1048576"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := ParseJobResponse([]byte(tc.input))
			require.EqualError(t, err, tc.want)
		})
	}
	// A response as Python's yaml.dump writes it (keys sorted, a
	// multi-line message quoted) is read too.
	r, f, err := ParseJobResponse([]byte("job_name: test_job_1\nmessage: 'line 1\n\n  line 2'\nrequest_id: r1\nresult: failure\n"))
	require.NoError(t, err)
	require.Equal(t, FormatYAML, f)
	require.Equal(t, JobResponse{JobName: "test_job_1", RequestID: "r1", Result: ResultFailure, Message: "line 1\nline 2"}, r)
	require.Equal(t, []string{"started", "working", "success", "failure"}, results)
	var decoded map[string]any
	b, _ := seedJobResponse().Encode(FormatJSON)
	require.NoError(t, json.Unmarshal(b, &decoded))
	require.Len(t, decoded, 4)
}
