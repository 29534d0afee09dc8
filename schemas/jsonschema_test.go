package schemas

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	schemadocs "github.com/ansible-worker/ansible-worker/schemas/jsonschema"
	"github.com/ansible-worker/ansible-worker/schemas/jsonschema/validate"
)

// schemaAgrees reports whether the task request JSON Schema accepts data
// exactly when ParseTaskRequest does (parseErr is its error). Inputs the
// schema cannot speak about (not JSON, not UTF-8, over the size limit) agree
// trivially.
func schemaAgrees(v *validate.Validator, data []byte, parseErr error) (bool, string) {
	if len(data) > MaxTaskSize || !utf8.Valid(data) || !json.Valid(data) {
		return true, ""
	}
	// JSON Schema sees one document; the parser also refuses whitespace
	// other than JSON's and trailing data, which json.Valid already rules out.
	serr := v.Validate(schemadocs.TaskRequest, data)
	if (serr == nil) == (parseErr == nil) {
		return true, ""
	}
	return false, fmt.Sprintf("schema: %v; parser: %v", serr, parseErr)
}

// requestSchemaAgrees reports whether the JSON Schema of a JSON request's
// form (a task, or the seed-003 form) accepts data exactly when
// ParseRequest does (parseErr is its error). YAML and inputs over the
// size limit agree trivially.
func requestSchemaAgrees(v *validate.Validator, data []byte, parseErr error) (bool, string) {
	if len(data) > MaxTaskSize || !utf8.Valid(data) || !json.Valid(data) {
		return true, ""
	}
	top, err := decodeJSON(bytes.Trim(data, " \t\r\n"))
	if err != nil {
		return false, err.Error()
	}
	if isTaskObject(top) {
		return schemaAgrees(v, data, parseErr)
	}
	serr := v.Validate(schemadocs.JobRequest, data)
	if (serr == nil) == (parseErr == nil) {
		return true, ""
	}
	return false, fmt.Sprintf("job request schema: %v; parser: %v", serr, parseErr)
}

// Every JSON Schema compiles and is served by name.
func TestJSONSchemasCompile(t *testing.T) {
	t.Parallel()
	_, err := validate.New()
	require.NoError(t, err)
	for _, n := range schemadocs.Names() {
		b, err := schemadocs.Document(n)
		require.NoError(t, err)
		require.True(t, json.Valid(b), n)
	}
	_, err = schemadocs.Document("nope")
	require.Error(t, err)
	require.Contains(t, schemadocs.Names(), schemadocs.JobRequest)
	require.Contains(t, schemadocs.Names(), schemadocs.JobResponse)
}

// The job request JSON Schema accepts exactly the seed-003 requests in
// JSON that ParseRequest accepts, and a JSON task is judged by the task
// request schema, over examples and the whole fuzz corpus.
func TestJobRequestSchemaAgreesWithParser(t *testing.T) {
	t.Parallel()
	v, err := validate.New()
	require.NoError(t, err)
	inputs := []string{
		`{"test_job_1":{"request_id":"` + seedUUID + `","parameters":["param1","param2","param3"]}}`,
		`{"deploy":{"request_id":"r1"}}`,
		`{"deploy":{"request_id":"r1","parameters":null}}`,
		`{"deploy":{"request_id":"r1","parameters":{"a":[1,2.5e300,null,true,"x"]}}}`,
		`{"Deploy.app-2_x":{"request_id":"R_1-2"}}`,
		`{"` + strings.Repeat("j", 128) + `":{"request_id":"` + strings.Repeat("r", 128) + `"}}`,
		`{"` + strings.Repeat("j", 129) + `":{"request_id":"r1"}}`,
		`{"deploy":{"request_id":"` + strings.Repeat("r", 129) + `"}}`,
		`{"deploy":{"request_id":"r1"},"other":{"request_id":"r2"}}`,
		`{"deploy":{"request_id":"r1","extra":1}}`,
		`{"deploy":{"request_id":5}}`,
		`{"deploy":{"request_id":null}}`,
		`{"deploy":{"parameters":[]}}`,
		`{"deploy":[]}`,
		`{"deploy":"r1"}`,
		`{".hidden":{"request_id":"r1"}}`,
		`{"-x":{"request_id":"r1"}}`,
		`{"a b":{"request_id":"r1"}}`,
		`{"":{"request_id":"r1"}}`,
		`{"deploy":{"request_id":"a.b"}}`,
		`{"deploy":{"request_id":""}}`,
		`{}`, `[]`, `null`, `"deploy"`, `1`,
		`{"deploy":{"request_id":"r1"},"deploy":{"request_id":"r2"}}`,
		`{"task_id":"t1","job":"deploy","parameters":[1]}`,
		`{"playbook":{"request_id":"r1"}}`,
		`{"job":{"request_id":"r1"}}`,
		minimalRequest, seedExample,
	}
	files, err := filepath.Glob("testdata/fuzz/FuzzParseRequest/*")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	all := make([][]byte, 0, len(inputs)+len(files))
	for _, in := range inputs {
		all = append(all, []byte(in))
	}
	for _, f := range files {
		all = append(all, readCorpusFile(t, f))
	}
	accepted := 0
	for _, in := range all {
		r, err := ParseRequest(in)
		ok, why := requestSchemaAgrees(v, in, err)
		require.True(t, ok, "%q: %s", in, why)
		if err == nil && r.Named != nil && r.Format == FormatJSON {
			accepted++
		}
	}
	require.GreaterOrEqual(t, accepted, 5)
}

// A JobResponse as Encode writes it in JSON fits its schema; what
// ParseJobResponse refuses, the schema refuses too.
func TestJobResponseSchema(t *testing.T) {
	t.Parallel()
	v, err := validate.New()
	require.NoError(t, err)
	for i, s := range trickyStrings {
		r := JobResponse{JobName: s, RequestID: s, Result: results[i%len(results)], Message: s}
		b, err := r.Encode(FormatJSON)
		require.NoError(t, err)
		require.NoError(t, v.Validate(schemadocs.JobResponse, b), "%s", b)
	}
	for _, in := range []string{
		`{"job_name":"j","result":"success"}`,
		`{"job_name":"j","request_id":"r","result":"done","message":""}`,
		`{"job_name":"j","request_id":"r","result":"success","message":"","code":0}`,
		`{"job_name":1,"request_id":"r","result":"success","message":""}`,
		`{"job_name":"j","request_id":null,"result":"success","message":""}`,
		`[]`, `"success"`, `null`,
	} {
		_, _, perr := ParseJobResponse([]byte(in))
		require.Error(t, perr, in)
		require.Error(t, v.Validate(schemadocs.JobResponse, []byte(in)), in)
	}
}

// The task request JSON Schema accepts exactly what ParseTaskRequest
// accepts, over the seed example and the whole fuzz corpus.
func TestTaskRequestSchemaAgreesWithParser(t *testing.T) {
	t.Parallel()
	v, err := validate.New()
	require.NoError(t, err)
	inputs := [][]byte{[]byte(seedExample), []byte(minimalRequest)}
	files, err := filepath.Glob("testdata/fuzz/FuzzParseTaskRequest/*")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		inputs = append(inputs, readCorpusFile(t, f))
	}
	accepted := 0
	for _, in := range inputs {
		_, perr := ParseTaskRequest(in)
		ok, why := schemaAgrees(v, in, perr)
		require.True(t, ok, "%q: %s", in, why)
		if perr == nil {
			accepted++
		}
	}
	require.Positive(t, accepted, "the corpus holds valid requests too")
	require.NoError(t, v.Validate(schemadocs.TaskRequest, []byte(seedExample)))
}

// A TaskStatus as the worker writes it, in every state, fits its schema;
// the seed's example does too.
func TestTaskStatusSchema(t *testing.T) {
	t.Parallel()
	v, err := validate.New()
	require.NoError(t, err)
	now := time.Now()
	for _, st := range []State{StateQueued, StateRunning, StateSuccess, StateFailed, StateCancelled, StateTimeout} {
		s := TaskStatus{TaskID: "t1", State: st, CreatedAt: NewTime(now), Output: map[string]any{}, Group: "production"}
		if st != StateQueued {
			rc := 2
			s.StartedAt, s.CompletedAt, s.ReturnCode, s.Worker, s.Attempt = NewTime(now), NewTime(now), &rc, "w1", 1
			s.SetError("boom")
		}
		b, err := json.Marshal(s)
		require.NoError(t, err)
		require.NoError(t, v.Validate(schemadocs.TaskStatus, b), string(b))
	}
	require.Error(t, v.Validate(schemadocs.TaskStatus, []byte(`{"task_id":"t1","state":"done"}`)))
}

// readCorpusFile decodes a `go test fuzz v1` file holding one []byte.
func readCorpusFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 1<<20), 4<<20)
	require.True(t, sc.Scan())
	require.Equal(t, "go test fuzz v1", sc.Text())
	require.True(t, sc.Scan(), path)
	line := strings.TrimSpace(sc.Text())
	require.True(t, strings.HasPrefix(line, "[]byte(") && strings.HasSuffix(line, ")"), path)
	s, err := strconv.Unquote(line[len("[]byte(") : len(line)-1])
	require.NoError(t, err, path)
	return []byte(s)
}
