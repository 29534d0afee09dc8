package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Results of a JobResponse, in the order a request gets them.
const (
	ResultStarted = "started"
	ResultWorking = "working"
	ResultSuccess = "success"
	ResultFailure = "failure"
)

// results lists the results a response may carry.
var results = []string{ResultStarted, ResultWorking, ResultSuccess, ResultFailure}

// jobResponseFields are a response's keys, in the order seed 003 writes
// them.
var jobResponseFields = []string{"job_name", "request_id", "result", "message"}

// JobResponse answers a named-job request on <prefix>.<group>.responses (seed 003's response queue).
// JobName and RequestID are those of the request as written, whatever
// they are, so a failure response reaches the sender of a bad request.
type JobResponse struct {
	JobName   string `json:"job_name"`
	RequestID string `json:"request_id"`
	Result    string `json:"result"`
	Message   string `json:"message"`
}

// values returns the fields in jobResponseFields' order.
func (r JobResponse) values() []string { return []string{r.JobName, r.RequestID, r.Result, r.Message} }

// check refuses what no reader would get back: a result seed 003 does not
// know, text that is not UTF-8 (JSON and YAML would change it).
func (r JobResponse) check() error {
	if !slices.Contains(results, r.Result) {
		return fmt.Errorf("result must be one of %s, got %q", strings.Join(results, ", "), truncate(r.Result))
	}
	for i, v := range r.values() {
		if !utf8.ValidString(v) {
			return fmt.Errorf("%s is not valid UTF-8", jobResponseFields[i])
		}
	}
	return nil
}

// Encode writes r in format f: JSON (one object), or YAML as seed 003 shows it: a "---" line, then job_name, request_id, result, message in that order, a multi-line message as a literal block ("|-", or "|" / "|+" as needed to keep its exact text).
// A one-line message is a literal block too, as in seed 003's example; a
// message a block cannot hold exactly (control characters, \r, trailing
// spaces, an empty one) is double-quoted. Other values are plain when
// YAML 1.1 and 1.2 both read them as strings ("yes", "1.0", "null" and
// "2001-12-14" are quoted), so yaml.safe_load reads back the same strings.
func (r JobResponse) Encode(f RequestFormat) ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("job response: %w", err)
	}
	switch f {
	case FormatJSON:
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false) // messages are text, read by people
		if err := enc.Encode(r); err != nil {
			return nil, err
		}
		return yamlSafeJSON(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
	case FormatYAML:
		root := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for i, v := range r.values() {
			n := yamlString(v)
			if i == 3 {
				n = yamlBlock(v)
			}
			root.Content = append(root.Content, yamlString(jobResponseFields[i]), n)
		}
		return encodeYAML(root)
	}
	return nil, fmt.Errorf("unknown response format %q", f)
}

// yamlSafeJSON escapes, in JSON that encoding/json wrote, the characters
// that a YAML 1.1 reader refuses (DEL, C1 controls, U+FFFE, U+FFFF) or
// reads as a line break (NEL) inside a quoted string: seed 003's clients
// may read every response with yaml.safe_load, and JSON is YAML to it.
// encoding/json already escapes the others. Outside strings, JSON holds
// none of these characters.
func yamlSafeJSON(b []byte) []byte {
	var out bytes.Buffer
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0xfffe || r == 0xffff {
			fmt.Fprintf(&out, `\u%04x`, r)
		} else {
			out.Write(b[:size])
		}
		b = b[size:]
	}
	return out.Bytes()
}

// ParseJobResponse reads a response in either format (for clients and tests).
// JSON is read as JSON, anything else as YAML 1.1 as yaml.safe_load reads
// it. Every field is required and must be a string; the result must be
// one of the four.
func ParseJobResponse(data []byte) (JobResponse, RequestFormat, error) {
	if len(data) > MaxTaskSize {
		return JobResponse{}, "", fmt.Errorf("job response is %d bytes, the limit is %d", len(data), MaxTaskSize)
	}
	if !utf8.Valid(data) {
		return JobResponse{}, "", errors.New("job response is not valid UTF-8")
	}
	var v any
	f := FormatJSON
	if trimmed := bytes.Trim(data, " \t\r\n"); json.Valid(trimmed) {
		v, _ = decodeJSON(trimmed)
	} else {
		f = FormatYAML
		var err error
		if v, err = DecodeYAML11(data, messageYAML(len(data))); err != nil {
			return JobResponse{}, f, fmt.Errorf("job response: %w", err)
		}
	}
	r, err := jobResponseFrom(v)
	return r, f, err
}

// jobResponseFrom reads a decoded response.
func jobResponseFrom(v any) (JobResponse, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return JobResponse{}, fmt.Errorf("job response must be a mapping {%s}, got %s",
			strings.Join(jobResponseFields, ", "), ValueKind(v))
	}
	var problems []string
	if msg := unknownNames(sortedKeys(m), jobResponseFields); msg != "" {
		problems = append(problems, msg)
	}
	vals := make([]string, len(jobResponseFields))
	for i, name := range jobResponseFields {
		x, set := m[name]
		s, isStr := x.(string)
		switch {
		case !set:
			problems = append(problems, name+" is required")
		case !isStr:
			problems = append(problems, fmt.Sprintf("%s must be a string, got %s", name, ValueKind(x)))
		}
		vals[i] = s
	}
	r := JobResponse{JobName: vals[0], RequestID: vals[1], Result: vals[2], Message: vals[3]}
	if _, isStr := m["result"].(string); isStr && !slices.Contains(results, r.Result) {
		problems = append(problems, fmt.Sprintf("result must be one of %s, got %q", strings.Join(results, ", "), truncate(r.Result)))
	}
	if len(problems) > 0 {
		return r, fmt.Errorf("job response: %s", strings.Join(problems, "; "))
	}
	return r, nil
}
