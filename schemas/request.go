package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// RequestFormat is how a request was written; its responses are written the same way.
type RequestFormat string

// The formats of requests and responses.
const (
	FormatJSON RequestFormat = "json"
	FormatYAML RequestFormat = "yaml"
)

// NamedRequest is the seed-003 form {<job name>: {request_id, parameters}}, as written.
type NamedRequest struct {
	// JobName is the request's one key.
	JobName string
	// RequestID is its request_id; "" when it has none (or a list or
	// mapping instead).
	RequestID string
}

// Request is a parsed request in any of its forms.
type Request struct {
	// Task is what the worker runs. For the seed-003 form: TaskID is the
	// request_id, Job the job name, Parameters the parameters.
	Task TaskRequest
	// Named is set for a request in the seed-003 form, even when it is
	// invalid, as far as it could be read: the job name and request id for
	// its failure response. A name or id that is not a string (a YAML 123)
	// is kept as written, so the response still reaches its sender.
	Named *NamedRequest
	// Format is the request's format.
	Format RequestFormat
}

// MaxRequestDepth bounds the nesting of a YAML request; parameters start
// at depth 2. JSON has its own bound (encoding/json's).
const MaxRequestDepth = 100

// messageYAML bounds what a YAML request or response of size bytes may
// expand to. Aliases are accepted (yaml.safe_load takes them, and
// yaml.dump writes them for a value used twice), but every use of one
// counts, and the value may hold at most twice the nodes and twice the
// text of size bytes. Without aliases a document holds at most 1.5 nodes
// and 1.5 bytes of text per byte (plus a few nodes: "-" is 3), so only
// aliases meet the bounds, and they can at most double a message: a few
// hundred bytes cannot become megabytes.
func messageYAML(size int) YAML11Options {
	return YAML11Options{MaxDepth: MaxRequestDepth, MaxNodes: 2*size + 16, MaxBytes: 2*size + 16, JSON: true}
}

// The messages of requests of no known form.
const (
	requestShape = "a request is a JSON task or {<job>: {request_id, parameters}}"
	yamlTask     = "a task request is JSON; YAML is for named-job requests ({<job>: {request_id, parameters}})"
)

// namedFields are the keys of a seed-003 job's mapping.
var namedFields = []string{"request_id", "parameters"}

// ParseRequest parses a request in any form: the JSON task (ParseTaskRequest),
// or the seed-003 form in JSON or YAML. A JSON object with task_id or
// another task field is a task; other JSON is the seed-003 form; anything
// else is read as YAML 1.1, as seed 003's listener (yaml.safe_load) reads
// it. Errors about the content are *InvalidTaskError, as ParseTaskRequest
// returns; Named and Task.TaskID are filled when they could be read.
func ParseRequest(data []byte) (Request, error) {
	if len(data) > MaxTaskSize || !utf8.Valid(data) {
		// Refused as ParseTaskRequest refuses it, with the id it reads.
		t, err := ParseTaskRequest(data)
		return Request{Task: t, Format: FormatJSON}, err
	}
	trimmed := bytes.Trim(data, " \t\r\n")
	// The common case, a JSON task, decoded once.
	if raw, err := decodeObject(trimmed); err == nil && hasTaskField(raw) {
		t, err := parseTaskObject(raw)
		return Request{Task: t, Format: FormatJSON}, err
	}
	if !json.Valid(trimmed) {
		return parseYAMLRequest(data, trimmed)
	}
	top, err := decodeJSON(trimmed)
	if err != nil { // json.Valid said otherwise: cannot happen
		return Request{Task: newTask(), Format: FormatJSON}, &InvalidTaskError{Problems: []string{err.Error()}}
	}
	if isTaskObject(top) { // one decodeObject refused: ParseTaskRequest says why
		t, err := ParseTaskRequest(data)
		return Request{Task: t, Format: FormatJSON}, err
	}
	return namedFromJSON(top).request(FormatJSON)
}

// decodeJSON decodes one JSON value, numbers kept exact.
func decodeJSON(data []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}

// hasTaskField reports whether an object has a key of the task form.
func hasTaskField(raw map[string]json.RawMessage) bool {
	for k := range raw {
		if slices.Contains(taskFields, k) {
			return true
		}
	}
	return false
}

// isTaskObject reports a JSON object with a key of the task form.
func isTaskObject(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	for k := range m {
		if slices.Contains(taskFields, k) {
			return true
		}
	}
	return false
}

// jsonStart is how a JSON object starts: a brace, then a quoted key (a
// byte order mark first is a JSON error too).
var jsonStart = lazyRegexp(`^(?:\x{FEFF})?\{[ \t\r\n]*"`)

// parseYAMLRequest reads a request that is not JSON. trimmed is data
// without JSON's white space: when it starts like a JSON object, the
// JSON error is kept, as the sender most likely meant JSON.
func parseYAMLRequest(data, trimmed []byte) (Request, error) {
	r := Request{Task: newTask(), Format: FormatYAML}
	var jsonErr error
	if jsonStart().Match(trimmed) {
		_, jsonErr = decodeObject(trimmed)
	}
	doc, err := parseYAMLDocument(data)
	if err != nil {
		msg := "a request is not valid JSON or YAML"
		if jsonErr != nil {
			why := strings.TrimPrefix(jsonErr.Error(), "task request is not valid JSON: ")
			msg = fmt.Sprintf("a request is not valid JSON (%s) or YAML", strings.TrimPrefix(why, "task request "))
		}
		var se *YAMLSyntaxError
		if errors.As(err, &se) {
			msg += se.Detail()
		}
		return r, &InvalidTaskError{Problems: []string{msg}}
	}
	d := namedFromYAML(doc, len(data))
	if !d.task {
		return d.request(FormatYAML)
	}
	r.Task.TaskID = d.taskID
	problems := []string{yamlTask}
	if jsonErr != nil {
		problems = append([]string{jsonErr.Error()}, problems...)
	}
	return r, &InvalidTaskError{Problems: problems}
}

// namedDoc is a request in the seed-003 form as read, JSON or YAML,
// before its rules are applied: one set of rules reads both formats.
type namedDoc struct {
	// kind is what the document is when it is not a mapping.
	kind string
	// jobs are the top-level entries, a name set twice kept once (the
	// last, as JSON decoders and PyYAML keep it).
	jobs []namedJob
	// task reports a task field at the top (YAML only); taskID is its
	// task_id when that is valid.
	task   bool
	taskID string
}

// namedJob is one top-level entry of a seed-003 request.
type namedJob struct {
	name     string // as written
	nameRead bool   // the name is a scalar, so name holds it
	nameKind string // "" for a string, else what it is
	bodyKind string // "" for a mapping, else what it is
	keys     []string
	id       string // as written
	idSet    bool   // request_id is there and not null
	idRead   bool   // it is a scalar, so id holds it
	idKind   string // "" for a string, else what it is
	params   any
	paramErr error
}

// add adds a job, replacing one of the same name.
func (d *namedDoc) add(j namedJob) {
	for i := range d.jobs {
		if j.nameRead && d.jobs[i].nameRead && d.jobs[i].name == j.name {
			d.jobs[i] = j
			return
		}
	}
	d.jobs = append(d.jobs, j)
}

// namedFromJSON reads a JSON request that is not a task.
func namedFromJSON(top any) namedDoc {
	m, ok := top.(map[string]any)
	if !ok {
		return namedDoc{kind: ValueKind(top)}
	}
	var d namedDoc
	for _, name := range sortedKeys(m) {
		j := namedJob{name: name, nameRead: true}
		body, ok := m[name].(map[string]any)
		if !ok {
			j.bodyKind = ValueKind(m[name])
			d.jobs = append(d.jobs, j)
			continue
		}
		j.keys = sortedKeys(body)
		if id, set := body["request_id"]; set && id != nil {
			j.idSet = true
			switch x := id.(type) {
			case string:
				j.id, j.idRead = x, true
			case json.Number, bool:
				j.id, j.idRead, j.idKind = fmt.Sprint(x), true, ValueKind(x)
			default:
				j.idKind = ValueKind(x)
			}
		}
		j.params = body["parameters"]
		d.jobs = append(d.jobs, j)
	}
	return d
}

// namedFromYAML reads a YAML request of size bytes; its values are
// converted under the bounds of messageYAML, counted over the whole
// document.
func namedFromYAML(doc *yaml.Node, size int) namedDoc {
	c := &yaml11{o: messageYAML(size)}
	root := yamlDeref(doc)
	if root == nil {
		return namedDoc{kind: "an empty document"}
	}
	if root.Kind != yaml.MappingNode {
		return namedDoc{kind: c.kind(root)}
	}
	var d namedDoc
	for i := 0; i+1 < len(root.Content); i += 2 {
		j := namedJob{}
		j.name, j.nameKind, j.nameRead = c.text(root.Content[i])
		if j.nameRead && j.nameKind == "" && slices.Contains(taskFields, j.name) {
			d.task = true
			if id, kind, _ := c.text(root.Content[i+1]); j.name == "task_id" && kind == "" && ValidID(id) {
				d.taskID = id
			}
		}
		c.body(&j, root.Content[i+1])
		d.add(j)
	}
	return d
}

// body reads the mapping of one job.
func (c *yaml11) body(j *namedJob, n *yaml.Node) {
	n = yamlDeref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		j.bodyKind = c.kind(n)
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, kind, read := c.text(n.Content[i])
		if !read {
			key = "(" + kind + ")"
		}
		j.keys = append(j.keys, key)
		switch {
		case kind != "":
			// Not a string: it names no field.
		case key == "request_id":
			j.id, j.idKind, j.idRead = c.text(n.Content[i+1])
			if j.idKind == "null" { // no id, as in JSON
				j.id, j.idKind, j.idRead = "", "", false
			}
			j.idSet = j.idRead || j.idKind != ""
		case key == "parameters":
			j.params, j.paramErr = c.value(n.Content[i+1], 2)
		}
	}
}

// yamlDeref follows a document to its content and aliases to their
// targets; nil for an empty document. Aliases only lead to nodes defined
// before them, so the chain ends; the bound is a safeguard.
func yamlDeref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && i < 100; i++ {
		switch {
		case n.Kind == yaml.DocumentNode && len(n.Content) > 0:
			n = n.Content[0]
		case n.Kind == yaml.DocumentNode:
			return nil
		case n.Kind == yaml.AliasNode:
			n = n.Alias
		default:
			return n
		}
	}
	return n
}

// text reads a scalar as written; kind is "" when YAML 1.1 reads it as a
// string (a timestamp it reads as a date), else what it reads; read is
// false for a list or mapping.
func (c *yaml11) text(n *yaml.Node) (text, kind string, read bool) {
	n = yamlDeref(n)
	if n == nil || n.Kind != yaml.ScalarNode {
		return "", c.kind(n), false
	}
	v, err := yaml11Scalar(n)
	switch {
	case err != nil:
		return n.Value, "a value tagged " + n.ShortTag(), true
	case yamlTimestamp(n):
		return n.Value, "a timestamp", true
	}
	if _, ok := v.(string); ok {
		return n.Value, "", true
	}
	return n.Value, ValueKind(v), true
}

// kind names what a node is, for messages.
func (c *yaml11) kind(n *yaml.Node) string {
	n = yamlDeref(n)
	switch {
	case n == nil:
		return "null"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	}
	if _, kind, _ := c.text(n); kind != "" {
		return kind
	}
	return "a string"
}

// request applies the rules of the seed-003 form.
func (d namedDoc) request(f RequestFormat) (Request, error) {
	r := Request{Task: newTask(), Format: f}
	if d.kind != "" || len(d.jobs) == 0 {
		got := d.kind
		if got == "" {
			got = "an empty mapping"
		}
		return r, &InvalidTaskError{Problems: []string{requestShape + ", got " + got}}
	}
	sort.SliceStable(d.jobs, func(a, b int) bool { return d.jobs[a].name < d.jobs[b].name })
	j := d.jobs[0]
	if j.nameRead {
		r.Named = &NamedRequest{JobName: j.name}
		if j.idRead {
			r.Named.RequestID = j.id
		}
	}
	if len(d.jobs) > 1 {
		return r, &InvalidTaskError{Problems: []string{
			fmt.Sprintf("one job per request, got %d: %s", len(d.jobs), d.names())}}
	}
	p := &taskParser{}
	j.check(p, &r.Task, f)
	if len(p.errs) > 0 {
		return r, &InvalidTaskError{Problems: p.errs}
	}
	return r, nil
}

// names lists the job names, at most ten.
func (d namedDoc) names() string {
	var names []string
	for i, j := range d.jobs {
		if i == 10 {
			names = append(names, "…")
			break
		}
		if !j.nameRead {
			j.name = "(" + j.nameKind + ")"
		}
		names = append(names, truncate(j.name))
	}
	return strings.Join(names, ", ")
}

// check applies the rules to one job, filling t with what is valid.
func (j namedJob) check(p *taskParser, t *TaskRequest, f RequestFormat) {
	switch {
	case j.nameKind != "":
		p.bad("job name must be a string, got %s%s", j.nameKind, quoteHint(f, j.nameRead, j.name))
	default:
		if err := CheckJobName("job name", j.name); err != nil {
			p.bad("%s", err)
		} else {
			t.Job = j.name
		}
	}
	if j.bodyKind != "" {
		p.bad("the job's value must be a mapping {request_id, parameters}, got %s", j.bodyKind)
		return
	}
	if msg := unknownNames(j.keys, namedFields); msg != "" {
		p.bad("%s", msg)
	}
	switch {
	case !j.idSet:
		p.bad("request_id is required")
	case j.idKind != "":
		p.bad("request_id must be a string, got %s%s", j.idKind, quoteHint(f, j.idRead, j.id))
	default:
		if err := CheckID("request_id", j.id); err != nil {
			p.bad("%s", err)
		} else {
			t.TaskID = j.id
		}
	}
	if j.paramErr != nil {
		p.bad("parameters: %v", j.paramErr)
	} else {
		t.Parameters = j.params
	}
}

// quoteHint tells how to write a YAML scalar read as another type than
// a string.
func quoteHint(f RequestFormat, read bool, text string) string {
	if f != FormatYAML || !read {
		return ""
	}
	return fmt.Sprintf(" (write it in quotes: %q)", truncate(text))
}

// Encode writes r as ParseRequest reads it back, in r.Format: the JSON
// task when Named is nil, else the seed-003 form {Named.JobName:
// {request_id: Named.RequestID, parameters: Task.Parameters}}, in YAML as
// seed 003 shows it (a "---" line first). Parameters are written as JSON
// writes them (any Go value json.Marshal takes); none when nil.
func (r Request) Encode() ([]byte, error) {
	if r.Named == nil {
		if r.Format != FormatJSON {
			return nil, errors.New(yamlTask)
		}
		return json.Marshal(r.Task)
	}
	var params any
	if r.Task.Parameters != nil {
		b, err := json.Marshal(r.Task.Parameters)
		if err != nil {
			return nil, fmt.Errorf("parameters: %w", err)
		}
		if params, err = decodeJSON(b); err != nil {
			return nil, fmt.Errorf("parameters: %w", err)
		}
	}
	switch r.Format {
	case FormatJSON:
		type body struct {
			RequestID  string `json:"request_id"`
			Parameters any    `json:"parameters,omitempty"`
		}
		return json.Marshal(map[string]body{r.Named.JobName: {r.Named.RequestID, params}})
	case FormatYAML:
		return r.Named.encodeYAML(params)
	}
	return nil, fmt.Errorf("unknown request format %q", r.Format)
}

// encodeYAML writes the seed-003 form in YAML.
func (n *NamedRequest) encodeYAML(params any) ([]byte, error) {
	body := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map",
		Content: []*yaml.Node{yamlString("request_id"), yamlString(n.RequestID)}}
	if params != nil {
		p, err := yamlValue(params)
		if err != nil {
			return nil, fmt.Errorf("parameters: %w", err)
		}
		body.Content = append(body.Content, yamlString("parameters"), p)
	}
	root := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{yamlString(n.JobName), body}}
	return encodeYAML(root)
}
