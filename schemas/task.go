package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// DefaultForks is the forks value used when a task does not set one, as in
// ansible-playbook.
const DefaultForks = 5

// MaxVerbosity is the highest verbosity level a task may ask for (-vvvv).
const MaxVerbosity = 4

// MaxTaskSize bounds the size of a task request in bytes. It matches the
// default max_payload of nats-server, so no valid task is refused here that
// the server would have accepted.
const MaxTaskSize = 1 << 20

// TaskRequest is what a user submits to run a playbook. Field names, types and
// defaults are those of the MQTT ansible-worker it replaces. A request with a
// RunnerJob runs a private data directory the submitter shipped instead: it
// names no playbook or inventory and sets none of the run's options, which
// its kwargs hold; the other fields keep their defaults. A request with a
// Job runs the playbooks the worker's jobs file gives that job: it names no
// playbook or inventory, and keeps every other option.
type TaskRequest struct {
	// TaskID identifies the task; see ValidID.
	TaskID string `json:"task_id"`
	// Playbook is a path relative to the worker's playbook directory.
	Playbook string `json:"playbook"`
	// Inventory is a path relative to the playbook directory, or an inline
	// host list ending in a comma ("web1,web2,").
	Inventory string `json:"inventory"`
	// ExtraVars are passed to ansible-playbook through a file, as data.
	ExtraVars map[string]any `json:"extra_vars"`
	// Limit restricts the run to a host pattern ("" means no limit).
	Limit string `json:"limit,omitempty"`
	// Tags runs only tasks with these tags.
	Tags []string `json:"tags"`
	// SkipTags skips tasks with these tags.
	SkipTags []string `json:"skip_tags"`
	// Verbosity is 0 to 4, the number of -v flags.
	Verbosity int `json:"verbosity"`
	// CheckMode runs ansible-playbook --check.
	CheckMode bool `json:"check_mode"`
	// DiffMode runs ansible-playbook --diff.
	DiffMode bool `json:"diff_mode"`
	// Forks is the number of parallel processes, 1 or more.
	Forks int `json:"forks"`
	// Timeout in seconds; 0 means the worker's task_timeout.
	Timeout int `json:"timeout,omitempty"`
	// GitPull runs git pull in the playbook directory before the playbook.
	GitPull bool `json:"git_pull"`
	// RunnerJob, when set, runs the private data directory shipped with the
	// task (the worker finds it by group and task id) instead of a playbook.
	RunnerJob *RunnerJob `json:"runner_job,omitempty"`
	// Job names a job of the worker's jobs file (worker.jobs_file), which
	// says which playbooks run, instead of Playbook.
	Job string `json:"job,omitempty"`
	// Parameters reach the job's playbooks as the extra var "parameters",
	// as inert data like every extra var. Only with Job.
	Parameters any `json:"parameters,omitempty"`
}

// RunnerJob asks for the private data directory the submitter shipped
// with the task to be run, as ansible-runner's worker stage runs a
// transmitted job.
type RunnerJob struct {
	// Kwargs are the run arguments, the object that the first line of
	// ansible-runner's transmit stream holds under "kwargs"; the worker
	// checks them (package runnerstream).
	Kwargs json.RawMessage `json:"kwargs"`
}

// plainTask is TaskRequest without its MarshalJSON method.
type plainTask TaskRequest

// MarshalJSON writes the request as ParseTaskRequest reads it back. A
// runner job leaves out the fields it must not set, and a named job its
// playbook and inventory, while they hold the defaults ParseTaskRequest
// filled in: sent, they would be refused. A field set anyway is written,
// to be refused.
func (t TaskRequest) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(plainTask(t))
	var drop []string
	switch {
	case err != nil:
		return nil, err
	case t.RunnerJob != nil:
		drop = runnerJobForbidden
	case t.Job != "":
		drop = []string{"playbook", "inventory"}
	default:
		return b, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for _, k := range drop {
		if v, ok := m[k]; ok && fieldDefault(k, v) {
			delete(m, k)
		}
	}
	return json.Marshal(m)
}

// fieldDefault reports whether v is what ParseTaskRequest gives field k
// when the request leaves it out.
func fieldDefault(k string, v json.RawMessage) bool {
	switch string(v) {
	case `null`, `""`, `0`, `false`, `[]`, `{}`:
		return true
	}
	return k == "forks" && string(v) == strconv.Itoa(DefaultForks)
}

// InlineInventory reports whether the inventory is a comma-terminated host
// list rather than a path.
func (t *TaskRequest) InlineInventory() bool { return strings.HasSuffix(t.Inventory, ",") }

// taskFields lists the accepted keys, for the unknown-key message.
var taskFields = []string{"task_id", "playbook", "inventory", "extra_vars", "limit", "tags", "skip_tags",
	"verbosity", "check_mode", "diff_mode", "forks", "timeout", "git_pull", "runner_job", "job", "parameters"}

// runnerJobForbidden are the fields a runner job must leave absent or null:
// its kwargs hold the run's arguments. git_pull and job have their own
// reasons.
var runnerJobForbidden = []string{"playbook", "inventory", "extra_vars", "limit", "tags", "skip_tags",
	"verbosity", "check_mode", "diff_mode", "forks", "git_pull", "job"}

// newTask is a request with every default, as parsing starts from.
func newTask() TaskRequest {
	return TaskRequest{Forks: DefaultForks, ExtraVars: map[string]any{}, Tags: []string{}, SkipTags: []string{}}
}

// ParseTaskRequest decodes and validates a task request. On error the returned
// request still carries the task id when one could be read and is valid, so
// the caller can publish a failed status for it.
func ParseTaskRequest(data []byte) (TaskRequest, error) {
	t := newTask()
	raw, err := decodeObject(data)
	if err != nil {
		if len(data) > MaxTaskSize {
			t.TaskID = oversizedID(data)
		}
		return t, err
	}
	return parseTaskObject(raw)
}

// parseTaskObject reads the fields of a task request decoded into raw.
func parseTaskObject(raw map[string]json.RawMessage) (TaskRequest, error) {
	t := newTask()
	// The id first, so later errors can be attached to it.
	if v, ok := raw["task_id"]; ok {
		var id string
		if err := json.Unmarshal(v, &id); err == nil && ValidID(id) {
			t.TaskID = id
		}
	}
	p := &taskParser{raw: raw}
	p.unknownFields()
	p.fields(&t)
	p.values(&t)
	if len(p.errs) > 0 {
		return t, &InvalidTaskError{Problems: p.errs}
	}
	return t, nil
}

// oversizedID reads the top-level task_id of a request too large to parse
// (one an MQTT broker let through), so that its refusal can still reach
// its status; "" when there is no valid one. It stops at the id.
func oversizedID(data []byte) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ""
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return ""
		}
		if key == "task_id" {
			var id string
			if dec.Decode(&id) != nil || !ValidID(id) {
				return ""
			}
			return id
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return ""
		}
	}
	return ""
}

// decodeObject reads a task request as one JSON object, numbers kept exact.
func decodeObject(data []byte) (map[string]json.RawMessage, error) {
	if len(data) > MaxTaskSize {
		return nil, fmt.Errorf("task request is %d bytes, the limit is %d", len(data), MaxTaskSize)
	}
	if !utf8.Valid(data) {
		return nil, errors.New("task request is not valid UTF-8")
	}
	// Only JSON's own white space: bytes.TrimSpace would also drop Unicode
	// spaces such as U+00A0, which make the document invalid JSON.
	trimmed := bytes.Trim(data, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, errors.New("task request is empty")
	}
	if trimmed[0] != '{' {
		if !json.Valid(trimmed) {
			return nil, errors.New("task request is not valid JSON")
		}
		return nil, errors.New("task request must be a JSON object")
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("task request is not valid JSON: %w", err)
	}
	// dec.More would miss a stray ']' or '}' after the object.
	if dec.InputOffset() != int64(len(trimmed)) {
		return nil, errors.New("task request has data after the JSON object")
	}
	return raw, nil
}

// taskParser reads the fields of a decoded task request and collects every
// problem, in the order the fields are read.
type taskParser struct {
	raw  map[string]json.RawMessage
	errs []string
}

func (p *taskParser) bad(format string, a ...any) { p.errs = append(p.errs, fmt.Sprintf(format, a...)) }

// get returns a field's value; ok is false when it is absent or null.
func (p *taskParser) get(name string) (json.RawMessage, bool) {
	v, ok := p.raw[name]
	return v, ok && !isNull(v)
}

func (p *taskParser) unknownFields() {
	if msg := unknownKeys(p.raw, taskFields); msg != "" {
		p.bad("%s", msg)
	}
}

// unknownKeys names the keys of raw that are not accepted, "" when none.
func unknownKeys(raw map[string]json.RawMessage, accepted []string) string {
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	return unknownNames(keys, accepted)
}

// unknownNames names the keys that are not accepted, each once, "" when
// none.
func unknownNames(keys, accepted []string) string {
	var unknown []string
	for _, k := range keys {
		if !slices.Contains(accepted, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return ""
	}
	sort.Strings(unknown)
	unknown = slices.Compact(unknown)
	quoted := make([]string, len(unknown))
	for i, k := range unknown {
		quoted[i] = fmt.Sprintf("%q", k) // an empty or odd name stays visible
	}
	noun := "unknown field"
	if len(unknown) > 1 {
		noun = "unknown fields"
	}
	return fmt.Sprintf("%s %s (accepted: %s)", noun, strings.Join(quoted, ", "), strings.Join(accepted, ", "))
}

// fields reads every field into t.
func (p *taskParser) fields(t *TaskRequest) {
	p.taskID()
	_, job := p.get("job")
	if _, ok := p.get("runner_job"); ok {
		p.runnerJob(t)
		p.timeout(t)
		p.parameters(t, job)
		return
	}
	if job {
		p.job(t)
	} else {
		t.Playbook = p.str("playbook", true)
		t.Inventory = p.str("inventory", true)
	}
	t.Limit = p.str("limit", false)
	t.Tags = p.strList("tags")
	t.SkipTags = p.strList("skip_tags")
	t.CheckMode = p.boolean("check_mode")
	t.DiffMode = p.boolean("diff_mode")
	t.GitPull = p.boolean("git_pull")
	if v, set := p.integer("verbosity", 0); set {
		if v < 0 || v > MaxVerbosity {
			p.bad("verbosity must be 0 to %d, got %d", MaxVerbosity, v)
		}
		t.Verbosity = v
	}
	if v, set := p.integer("forks", DefaultForks); set {
		if v < 1 {
			p.bad("forks must be 1 or more, got %d", v)
		}
		t.Forks = v
	}
	p.timeout(t)
	p.extraVars(t)
	p.parameters(t, job)
}

// job reads a job that is there and not null, and refuses the playbook
// and inventory it replaces. Only a valid name is kept in t.
func (p *taskParser) job(t *TaskRequest) {
	v, _ := p.get("job")
	var name string
	if err := json.Unmarshal(v, &name); err != nil {
		p.bad("job must be a string, got %s", jsonKind(v))
	} else if err := CheckJobName("job", name); err != nil {
		p.bad("%s", err)
	} else {
		t.Job = name
	}
	if _, set := p.get("playbook"); set {
		p.bad("playbook: not with job (the job names its playbooks)")
	}
	if _, set := p.get("inventory"); set {
		p.bad("inventory: not with job (the job names its inventory)")
	}
}

// parameters reads the job's parameters, any JSON value, numbers kept
// exact; job says whether the request names a job.
func (p *taskParser) parameters(t *TaskRequest, job bool) {
	v, ok := p.get("parameters")
	if !ok {
		return
	}
	if !job {
		p.bad("parameters: only with job")
		return
	}
	d := json.NewDecoder(bytes.NewReader(v))
	d.UseNumber() // keep big integers exact
	var x any
	if err := d.Decode(&x); err != nil {
		p.bad("parameters are not valid JSON: %v", err)
		return
	}
	t.Parameters = x
}

func (p *taskParser) taskID() {
	v, ok := p.get("task_id")
	if !ok {
		p.bad("task_id is required")
		return
	}
	var id string
	if err := json.Unmarshal(v, &id); err != nil {
		p.bad("task_id must be a string, got %s", jsonKind(v))
	} else if err := CheckID("task_id", id); err != nil {
		p.bad("%s", err)
	}
}

func (p *taskParser) timeout(t *TaskRequest) {
	if v, set := p.integer("timeout", 0); set {
		if v < 1 {
			p.bad("timeout must be 1 second or more, got %d", v)
		}
		t.Timeout = v
	}
}

// runnerJob reads a runner_job that is there and not null, and refuses
// the fields its kwargs replace. Only a valid one is kept in t.
func (p *taskParser) runnerJob(t *TaskRequest) {
	v, _ := p.get("runner_job")
	var raw map[string]json.RawMessage
	if jsonKind(v) != "an object" || json.Unmarshal(v, &raw) != nil {
		// Not clearly a runner job: the other fields are not judged.
		p.bad(`runner_job must be an object with "kwargs", got %s`, jsonKind(v))
		return
	}
	job := p.runnerJobValue(raw)
	for _, name := range runnerJobForbidden {
		if _, set := p.get(name); !set {
			continue
		}
		why := "its kwargs hold the run's arguments"
		switch name {
		case "git_pull":
			why = "a shipped directory is not a git checkout"
		case "job":
			why = "the shipped directory holds the playbooks"
		}
		p.bad("%s: not with runner_job (%s)", name, why)
	}
	t.RunnerJob = job
}

// runnerJobValue checks runner_job's keys, {"kwargs": {...}}; nil when
// they are wrong.
func (p *taskParser) runnerJobValue(raw map[string]json.RawMessage) *RunnerJob {
	valid := true
	if msg := unknownKeys(raw, []string{"kwargs"}); msg != "" {
		p.bad("runner_job: %s", msg)
		valid = false
	}
	kwargs, ok := raw["kwargs"]
	switch {
	case !ok:
		p.bad("runner_job.kwargs is required")
		return nil
	case jsonKind(kwargs) != "an object":
		p.bad("runner_job.kwargs must be a JSON object, got %s", jsonKind(kwargs))
		return nil
	case !valid:
		return nil
	}
	// Compact: the kwargs go on one line of a transmit stream.
	var buf bytes.Buffer
	if err := json.Compact(&buf, kwargs); err != nil {
		p.bad("runner_job.kwargs is not valid JSON: %v", err)
		return nil
	}
	return &RunnerJob{Kwargs: buf.Bytes()}
}

func (p *taskParser) extraVars(t *TaskRequest) {
	v, ok := p.get("extra_vars")
	if !ok {
		return
	}
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(v))
	d.UseNumber() // keep big integers exact
	if err := d.Decode(&m); err != nil {
		p.bad("extra_vars must be a JSON object, got %s", jsonKind(v))
		return
	}
	t.ExtraVars = m
	p.errs = append(p.errs, checkVarNames(m)...)
}

// values checks what the strings may hold: nothing ansible-playbook would
// read as an option, a file or more than one argument.
func (p *taskParser) values(t *TaskRequest) {
	if t.Playbook != "" {
		if err := firstErr(checkArg("playbook", t.Playbook), checkLength("playbook", t.Playbook, MaxPathLength)); err != nil {
			p.bad("%s", err)
		}
	}
	if t.Inventory != "" {
		if err := checkArg("inventory", t.Inventory); err != nil {
			p.bad("%s", err)
		} else {
			p.errs = append(p.errs, checkInventory(t.Inventory)...)
		}
	}
	if t.Limit != "" {
		if err := firstErr(checkArg("limit", t.Limit), checkLength("limit", t.Limit, MaxLimitLength),
			checkPattern("limit", t.Limit)); err != nil {
			p.bad("%s", err)
		}
	}
}

func (p *taskParser) str(name string, required bool) string {
	v, ok := p.get(name)
	if !ok {
		if required {
			p.bad("%s is required", name)
		}
		return ""
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		p.bad("%s must be a string, got %s", name, jsonKind(v))
		return ""
	}
	if required && s == "" {
		p.bad("%s must not be empty", name)
	}
	return s
}

func (p *taskParser) boolean(name string) bool {
	v, ok := p.get(name)
	if !ok {
		return false
	}
	var b bool
	if err := json.Unmarshal(v, &b); err != nil {
		p.bad("%s must be true or false, got %s", name, jsonKind(v))
	}
	return b
}

// integer reads a whole number that fits an int32; set is false when the
// field is absent, null or bad.
func (p *taskParser) integer(name string, def int) (n int, set bool) {
	v, ok := p.get(name)
	if !ok {
		return def, false
	}
	// json.Number would also take a quoted number ("5"): check the kind.
	var num json.Number
	if kind := jsonKind(v); kind != "a number" || json.Unmarshal(v, &num) != nil {
		p.bad("%s must be an integer, got %s", name, kind)
		return def, false
	}
	f, ferr := num.Float64()
	i, err := num.Int64()
	if err != nil {
		if (ferr != nil && !math.IsInf(f, 0)) || f != math.Trunc(f) {
			p.bad("%s must be an integer, got %s", name, num.String())
			return def, false
		}
		if f > math.MaxInt32 || f < math.MinInt32 {
			p.bad("%s is out of range: %s", name, num.String())
			return def, false
		}
		return int(f), true
	}
	if i > math.MaxInt32 || i < math.MinInt32 {
		p.bad("%s is out of range: %s", name, num.String())
		return def, false
	}
	return int(i), true
}

func (p *taskParser) strList(name string) []string {
	v, ok := p.get(name)
	if !ok {
		return []string{}
	}
	var l []string
	if err := json.Unmarshal(v, &l); err != nil {
		got := jsonKind(v)
		var elems []json.RawMessage
		if json.Unmarshal(v, &elems) == nil {
			for _, e := range elems {
				if k := jsonKind(e); k != "a string" {
					got = "an array containing " + k
					break
				}
			}
		}
		p.bad("%s must be an array of strings, got %s", name, got)
		return []string{}
	}
	if len(l) > MaxTags {
		p.bad("%s has %d entries, the limit is %d", name, len(l), MaxTags)
		return l
	}
	for _, s := range l {
		if err := checkArg(name, s); err != nil {
			p.bad("%s", err)
		}
		if s == "" || strings.Contains(s, ",") {
			p.bad("%s entries must be non-empty and contain no comma: %q", name, truncate(s))
		}
		if err := firstErr(checkLength(name+" entry", s, MaxTagLength), checkPattern(name, s)); err != nil {
			p.bad("%s", err)
		}
	}
	return l
}

// InvalidTaskError lists everything wrong with a task request.
type InvalidTaskError struct {
	Problems []string
}

// Error lists the problems in one line.
func (e *InvalidTaskError) Error() string {
	return "invalid task: " + strings.Join(e.Problems, "; ")
}

// checkArg refuses values that ansible-playbook would read as an option, or
// that cannot be passed as one argument.
func checkArg(name, v string) error {
	if strings.HasPrefix(v, "-") {
		return fmt.Errorf("%s must not start with '-': %q", name, v)
	}
	if strings.ContainsAny(v, "\x00\n\r") {
		return fmt.Errorf("%s must not contain NUL or line breaks", name)
	}
	return nil
}

func isNull(v json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(v), []byte("null")) }

func jsonKind(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// MaxJobNameLength is the longest job name accepted.
const MaxJobNameLength = 128

var jobNamePattern = lazyRegexp(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// ValidJobName reports whether s may name a job of the jobs file: 1 to 128
// characters of A-Z a-z 0-9 _ . -, not starting with . or - (so it is
// never a hidden file's name or an option).
func ValidJobName(s string) bool { return jobNamePattern().MatchString(s) }

// CheckJobName returns an error naming field (for example "job") when s
// is not a valid job name.
func CheckJobName(field, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s is empty", field)
	case utf8.RuneCountInString(s) > MaxJobNameLength:
		return fmt.Errorf("%s is %d characters long, the limit is %d", field, utf8.RuneCountInString(s), MaxJobNameLength)
	case !ValidJobName(s):
		return fmt.Errorf("%s %q may contain only A-Z a-z 0-9 _ . - and must not start with . or -", field, truncate(s))
	}
	return nil
}
