package schemas

import (
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas/jsonschema/validate"
)

// seedExample is the full task request of the MQTT ansible-worker's README.
const seedExample = `{
  "task_id": "a1b2c3d4e5f67890",
  "playbook": "deploy/application.yml",
  "inventory": "production",
  "extra_vars": {"app_version": "2.5.0"},
  "limit": "webservers",
  "tags": ["deploy"],
  "skip_tags": [],
  "verbosity": 0,
  "check_mode": false,
  "diff_mode": false,
  "forks": 5,
  "timeout": 1800,
  "git_pull": false
}`

// minimalRequest has only the required fields.
const minimalRequest = `{"task_id":"t1","playbook":"site.yml","inventory":"hosts"}`

// withFields returns the minimal request with the given fields set to raw
// JSON values; a nil value removes the field.
func withFields(t *testing.T, fields map[string]*string) []byte {
	t.Helper()
	return withFieldsOf(t, minimalRequest, fields)
}

// withFieldsOf is withFields on another request than the minimal one.
func withFieldsOf(t *testing.T, base string, fields map[string]*string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(base), &m))
	for k, v := range fields {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = json.RawMessage(*v)
	}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b
}

// field is one field set to a raw JSON value, for withFields.
func field(name, raw string) map[string]*string { return map[string]*string{name: &raw} }

// problems returns the problems of an *InvalidTaskError.
func problems(t *testing.T, err error) []string {
	t.Helper()
	var inv *InvalidTaskError
	require.True(t, errors.As(err, &inv), "want *InvalidTaskError, got %T: %v", err, err)
	require.NotEmpty(t, inv.Problems)
	return inv.Problems
}

func defaultRequest() TaskRequest {
	return TaskRequest{TaskID: "t1", Playbook: "site.yml", Inventory: "hosts", ExtraVars: map[string]any{},
		Tags: []string{}, SkipTags: []string{}, Forks: DefaultForks}
}

func TestParseTaskRequestSeedExample(t *testing.T) {
	t.Parallel()
	got, err := ParseTaskRequest([]byte(seedExample))
	require.NoError(t, err)
	require.Equal(t, TaskRequest{
		TaskID:    "a1b2c3d4e5f67890",
		Playbook:  "deploy/application.yml",
		Inventory: "production",
		ExtraVars: map[string]any{"app_version": "2.5.0"},
		Limit:     "webservers",
		Tags:      []string{"deploy"},
		SkipTags:  []string{},
		Verbosity: 0,
		Forks:     5,
		Timeout:   1800,
	}, got)
	require.False(t, got.InlineInventory())
}

// Omitted and null optional fields take the seed's defaults: extra_vars {},
// limit none, tags [], skip_tags [], verbosity 0, booleans false, forks 5, no
// timeout.
func TestParseTaskRequestDefaults(t *testing.T) {
	t.Parallel()
	allNull := `{"task_id":"t1","playbook":"site.yml","inventory":"hosts","extra_vars":null,"limit":null,
		"tags":null,"skip_tags":null,"verbosity":null,"check_mode":null,"diff_mode":null,"forks":null,
		"timeout":null,"git_pull":null}`
	for name, input := range map[string]string{
		"omitted":           minimalRequest,
		"null":              allNull,
		"explicit defaults": `{"task_id":"t1","playbook":"site.yml","inventory":"hosts","extra_vars":{},"limit":"","tags":[],"skip_tags":[],"verbosity":0,"check_mode":false,"diff_mode":false,"forks":5,"git_pull":false}`,
		"white space":       " \n\t" + minimalRequest + "\r\n ",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseTaskRequest([]byte(input))
			require.NoError(t, err)
			require.Equal(t, defaultRequest(), got)
			// Defaults are empty collections, never JSON null.
			b, err := json.Marshal(got)
			require.NoError(t, err)
			require.JSONEq(t, `{"task_id":"t1","playbook":"site.yml","inventory":"hosts","extra_vars":{},
				"tags":[],"skip_tags":[],"verbosity":0,"check_mode":false,"diff_mode":false,"forks":5,
				"git_pull":false}`, string(b))
		})
	}
}

func TestParseTaskRequestAllFieldsSet(t *testing.T) {
	t.Parallel()
	got, err := ParseTaskRequest([]byte(`{"task_id":"Deploy_2024-01","playbook":"site.yml",
		"inventory":"web1,web2,","extra_vars":{"a":"b"},"limit":"web1:!db","tags":["x","y"],
		"skip_tags":["z"],"verbosity":4,"check_mode":true,"diff_mode":true,"forks":1,"timeout":1,
		"git_pull":true}`))
	require.NoError(t, err)
	require.Equal(t, TaskRequest{TaskID: "Deploy_2024-01", Playbook: "site.yml", Inventory: "web1,web2,",
		ExtraVars: map[string]any{"a": "b"}, Limit: "web1:!db", Tags: []string{"x", "y"},
		SkipTags: []string{"z"}, Verbosity: 4, CheckMode: true, DiffMode: true, Forks: 1, Timeout: 1,
		GitPull: true}, got)
	require.True(t, got.InlineInventory())

	// Marshalled, it uses the request's own field names and parses back equal.
	b, err := json.Marshal(got)
	require.NoError(t, err)
	var keys map[string]any
	require.NoError(t, json.Unmarshal(b, &keys))
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	// runner_job, job and parameters are left out when there are none.
	want := slices.DeleteFunc(slices.Clone(taskFields), func(f string) bool {
		return f == "runner_job" || f == "job" || f == "parameters"
	})
	sort.Strings(want)
	require.Equal(t, want, names)
	again, err := ParseTaskRequest(b)
	require.NoError(t, err)
	require.Equal(t, got, again)
}

func TestParseTaskRequestRequiredFields(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"task_id", "playbook", "inventory"} {
		for how, fields := range map[string]map[string]*string{
			"missing": {name: nil},
			"null":    field(name, "null"),
			"empty":   field(name, `""`),
		} {
			t.Run(name+" "+how, func(t *testing.T) {
				t.Parallel()
				_, err := ParseTaskRequest(withFields(t, fields))
				require.Error(t, err)
				want := name + " is required"
				switch {
				case how == "empty" && name == "task_id":
					want = "task_id is empty"
				case how == "empty":
					want = name + " must not be empty"
				}
				require.Equal(t, []string{want}, problems(t, err))
			})
		}
	}
	t.Run("all missing", func(t *testing.T) {
		t.Parallel()
		_, err := ParseTaskRequest([]byte(`{}`))
		require.EqualError(t, err, "invalid task: task_id is required; playbook is required; inventory is required")
	})
}

func TestParseTaskRequestWrongTypes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		field, raw, want string
	}{
		{"task_id", `5`, "task_id must be a string, got a number"},
		{"task_id", `["t1"]`, "task_id must be a string, got an array"},
		{"task_id", `true`, "task_id must be a string, got a boolean"},
		{"playbook", `{}`, "playbook must be a string, got an object"},
		{"playbook", `["site.yml"]`, "playbook must be a string, got an array"},
		{"playbook", `false`, "playbook must be a string, got a boolean"},
		{"inventory", `1`, "inventory must be a string, got a number"},
		{"inventory", `["web1","web2"]`, "inventory must be a string, got an array"},
		{"limit", `["web"]`, "limit must be a string, got an array"},
		{"limit", `7`, "limit must be a string, got a number"},
		{"tags", `{"a":1}`, "tags must be an array of strings, got an object"},
		{"tags", `"deploy"`, "tags must be an array of strings, got a string"},
		{"tags", `["a",1]`, "tags must be an array of strings, got an array containing a number"},
		{"skip_tags", `[["a"]]`, "skip_tags must be an array of strings, got an array containing an array"},
		{"skip_tags", `true`, "skip_tags must be an array of strings, got a boolean"},
		{"verbosity", `"1"`, "verbosity must be an integer, got a string"},
		{"verbosity", `1.5`, "verbosity must be an integer, got 1.5"},
		{"verbosity", `true`, "verbosity must be an integer, got a boolean"},
		{"verbosity", `99999999999`, "verbosity is out of range: 99999999999"},
		{"forks", `"5"`, "forks must be an integer, got a string"},
		{"forks", `2.5`, "forks must be an integer, got 2.5"},
		{"forks", `[5]`, "forks must be an integer, got an array"},
		{"forks", `3e9`, "forks is out of range: 3e9"},
		{"forks", `1e400`, "forks is out of range: 1e400"},
		{"timeout", `"1800"`, "timeout must be an integer, got a string"},
		{"timeout", `{}`, "timeout must be an integer, got an object"},
		{"timeout", `-1e12`, "timeout is out of range: -1e12"},
		{"check_mode", `"true"`, "check_mode must be true or false, got a string"},
		{"diff_mode", `1`, "diff_mode must be true or false, got a number"},
		{"git_pull", `"yes"`, "git_pull must be true or false, got a string"},
		{"extra_vars", `[]`, "extra_vars must be a JSON object, got an array"},
		{"extra_vars", `"a=b c=d"`, "extra_vars must be a JSON object, got a string"},
		{"extra_vars", `5`, "extra_vars must be a JSON object, got a number"},
		{"extra_vars", `true`, "extra_vars must be a JSON object, got a boolean"},
	} {
		t.Run(tc.field+"="+tc.raw, func(t *testing.T) {
			t.Parallel()
			got, err := ParseTaskRequest(withFields(t, field(tc.field, tc.raw)))
			require.Error(t, err)
			require.Equal(t, []string{tc.want}, problems(t, err))
			require.EqualError(t, err, "invalid task: "+tc.want)
			if tc.field != "task_id" {
				require.Equal(t, "t1", got.TaskID, "the id is kept for the failed status")
			}
		})
	}
}

// Integers written as integral floats are accepted, as Python's JSON would.
func TestParseTaskRequestIntegralNumbers(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]int{`2.0`: 2, `1e1`: 10, `4E0`: 4, `-0`: 0} {
		t.Run(raw, func(t *testing.T) {
			t.Parallel()
			got, err := ParseTaskRequest(withFields(t, field("forks", raw)))
			if want < 1 {
				require.EqualError(t, err, "invalid task: forks must be 1 or more, got 0")
				return
			}
			require.NoError(t, err)
			require.Equal(t, want, got.Forks)
		})
	}
}

func TestParseTaskRequestUnknownFields(t *testing.T) {
	t.Parallel()
	accepted := "(accepted: task_id, playbook, inventory, extra_vars, limit, tags, skip_tags, verbosity, " +
		"check_mode, diff_mode, forks, timeout, git_pull, runner_job, job, parameters)"
	for _, tc := range []struct {
		name   string
		fields map[string]*string
		want   string
	}{
		{"one", field("become", `true`), `unknown field "become" ` + accepted},
		{"case matters", field("Playbook", `"x.yml"`), `unknown field "Playbook" ` + accepted},
		{"null value", field("extra-vars", `null`), `unknown field "extra-vars" ` + accepted},
		{"several sorted", map[string]*string{"zeta": ptr(`1`), "alpha": ptr(`{}`), "vars": ptr(`[]`)},
			`unknown fields "alpha", "vars", "zeta" ` + accepted},
		{"empty name", field("", `1`), `unknown field "" ` + accepted},
		{"odd name", field("a\tb", `1`), `unknown field "a\tb" ` + accepted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseTaskRequest(withFields(t, tc.fields))
			require.Equal(t, []string{tc.want}, problems(t, err))
			require.Equal(t, "t1", got.TaskID)
		})
	}
}

func ptr(s string) *string { return &s }

// Every problem is reported at once, so a user fixes a request in one go.
func TestParseTaskRequestReportsAllProblems(t *testing.T) {
	t.Parallel()
	got, err := ParseTaskRequest([]byte(`{"task_id":"t-9","inventory":"-i","verbosity":9,"forks":0,
		"timeout":-5,"tags":["a,b"],"limit":"--all","color":true}`))
	require.Equal(t, "t-9", got.TaskID)
	require.Equal(t, []string{
		`unknown field "color" ` +
			"(accepted: task_id, playbook, inventory, extra_vars, limit, tags, skip_tags, verbosity, check_mode, diff_mode, forks, timeout, git_pull, runner_job, job, parameters)",
		"playbook is required",
		`tags entries must be non-empty and contain no comma: "a,b"`,
		"verbosity must be 0 to 4, got 9",
		"forks must be 1 or more, got 0",
		"timeout must be 1 second or more, got -5",
		`inventory must not start with '-': "-i"`,
		`limit must not start with '-': "--all"`,
	}, problems(t, err))
	require.True(t, strings.HasPrefix(err.Error(), `invalid task: unknown field "color"`))
}

func TestParseTaskRequestNotAnObject(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, input, want string
	}{
		{"empty", ``, "task request is empty"},
		{"white space", " \n\t\r ", "task request is empty"},
		{"not JSON", `run site.yml please`, "task request is not valid JSON"},
		{"YAML", "task_id: t1\nplaybook: site.yml\n", "task request is not valid JSON"},
		{"array", `[{"task_id":"t1"}]`, "task request must be a JSON object"},
		{"string", `"t1"`, "task request must be a JSON object"},
		{"number", `42`, "task request must be a JSON object"},
		{"null", `null`, "task request must be a JSON object"},
		{"truncated", `{"task_id":"t1","playbook":`, "task request is not valid JSON: unexpected EOF"},
		{"bad object", `{"task_id":"t1",}`, "task request is not valid JSON: invalid character '}' looking for beginning of object key string"},
		{"single quotes", `{'task_id':'t1'}`, "task request is not valid JSON: invalid character '\\'' looking for beginning of object key string"},
		{"second object", minimalRequest + ` {"task_id":"t2"}`, "task request has data after the JSON object"},
		{"trailing text", minimalRequest + ` x`, "task request has data after the JSON object"},
		{"trailing bracket", minimalRequest + `]`, "task request has data after the JSON object"},
		{"trailing brace", minimalRequest + "\n}", "task request has data after the JSON object"},
		{"trailing comma", minimalRequest + `,`, "task request has data after the JSON object"},
		{"invalid UTF-8", `{"task_id":"t1","playbook":"site` + "\xff" + `.yml","inventory":"hosts"}`, "task request is not valid UTF-8"},
		{"latin-1", "{\"task_id\":\"t1\",\"playbook\":\"caf\xe9.yml\",\"inventory\":\"hosts\"}", "task request is not valid UTF-8"},
		{"no-break space before", "\u00a0" + minimalRequest, "task request is not valid JSON"},
		{"byte order mark", "\ufeff" + minimalRequest, "task request is not valid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseTaskRequest([]byte(tc.input))
			require.EqualError(t, err, tc.want)
			var inv *InvalidTaskError
			require.False(t, errors.As(err, &inv), "a request that is not a JSON object has no field problems")
			require.Equal(t, "", got.TaskID)
		})
	}
}

func TestParseTaskRequestSize(t *testing.T) {
	t.Parallel()
	// sized returns a valid request of exactly n bytes.
	sized := func(n int) []byte {
		prefix := `{"task_id":"big","playbook":"site.yml","inventory":"hosts","extra_vars":{"pad":"`
		suffix := `"}}`
		return []byte(prefix + strings.Repeat("x", n-len(prefix)-len(suffix)) + suffix)
	}
	at := sized(MaxTaskSize)
	require.Len(t, at, MaxTaskSize)
	got, err := ParseTaskRequest(at)
	require.NoError(t, err, "a request of exactly MaxTaskSize bytes is accepted")
	require.Equal(t, "big", got.TaskID)

	over := sized(MaxTaskSize + 1)
	got, err = ParseTaskRequest(over)
	require.EqualError(t, err, "task request is 1048577 bytes, the limit is 1048576")
	require.Equal(t, "big", got.TaskID, "the id is read all the same, for the refusal's status")

	// The id after a large value; none, or an invalid one, in a large request.
	pad := strings.Repeat("x", MaxTaskSize)
	got, _ = ParseTaskRequest([]byte(`{"extra_vars":{"pad":"` + pad + `","task_id":"inner"},"task_id":"late"}`))
	require.Equal(t, "late", got.TaskID)
	for _, body := range []string{`{"pad":"` + pad + `"}`, `{"task_id":"bad id","pad":"` + pad + `"}`, `["` + pad + `"]`, `{"task_id":` + pad} {
		got, _ = ParseTaskRequest([]byte(body))
		require.Equal(t, "", got.TaskID)
	}

	// Leading white space counts too: the limit is on what arrives.
	_, err = ParseTaskRequest(append([]byte(" "), at...))
	require.EqualError(t, err, "task request is 1048577 bytes, the limit is 1048576")
}

func TestParseTaskRequestTaskID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, id, problem string
	}{
		{"one character", "a", ""},
		{"all allowed characters", "AZaz09_-", ""},
		{"leading dash", "-x", ""},
		{"128 characters", strings.Repeat("a", 128), ""},
		{"129 characters", strings.Repeat("a", 129), "task_id is 129 characters long, the limit is 128"},
		{"dot", "a.b", `task_id "a.b" may contain only A-Z a-z 0-9 _ -`},
		{"space", "a b", `task_id "a b" may contain only A-Z a-z 0-9 _ -`},
		{"star", "a*", `task_id "a*" may contain only A-Z a-z 0-9 _ -`},
		{"greater than", ">", `task_id ">" may contain only A-Z a-z 0-9 _ -`},
		{"slash", "a/b", `task_id "a/b" may contain only A-Z a-z 0-9 _ -`},
		{"plus", "a+b", `task_id "a+b" may contain only A-Z a-z 0-9 _ -`},
		{"newline", "a\nb", `task_id "a\nb" may contain only A-Z a-z 0-9 _ -`},
		{"unicode letter", "tâche", `task_id "tâche" may contain only A-Z a-z 0-9 _ -`},
		{"unicode digit", "٣", `task_id "٣" may contain only A-Z a-z 0-9 _ -`},
		{"empty", "", "task_id is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw, err := json.Marshal(tc.id)
			require.NoError(t, err)
			got, err := ParseTaskRequest(withFields(t, field("task_id", string(raw))))
			if tc.problem == "" {
				require.NoError(t, err)
				require.Equal(t, tc.id, got.TaskID)
				return
			}
			require.Equal(t, []string{tc.problem}, problems(t, err))
			require.Equal(t, "", got.TaskID, "an invalid id is never returned")
		})
	}
}

// The id comes back with an error about other fields, so the worker can
// publish a failed status under it; a bad id never comes back.
func TestParseTaskRequestIDOnError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, input, id string
	}{
		{"bad playbook", `{"task_id":"job-1","playbook":5,"inventory":"hosts"}`, "job-1"},
		{"missing inventory", `{"task_id":"job-1","playbook":"site.yml"}`, "job-1"},
		{"unknown field", `{"task_id":"job-1","playbook":"site.yml","inventory":"hosts","x":1}`, "job-1"},
		{"id after bad field", `{"forks":0,"playbook":"site.yml","inventory":"hosts","task_id":"job-2"}`, "job-2"},
		{"bad id and bad field", `{"task_id":"job.1","playbook":5,"inventory":"hosts"}`, ""},
		{"id not a string", `{"task_id":123,"playbook":"site.yml","inventory":"hosts"}`, ""},
		{"id too long", `{"task_id":"` + strings.Repeat("x", 129) + `","playbook":"p","inventory":"i"}`, ""},
		{"no id", `{"playbook":"site.yml","inventory":"hosts"}`, ""},
		{"broken JSON", `{"task_id":"job-1","playbook":`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseTaskRequest([]byte(tc.input))
			require.Error(t, err)
			require.Equal(t, tc.id, got.TaskID)
		})
	}
}

// Values that ansible-playbook would read as options are refused.
func TestParseTaskRequestOptionInjection(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		field, raw, want string
	}{
		{"playbook", `"-x.yml"`, `playbook must not start with '-': "-x.yml"`},
		{"playbook", `"--version"`, `playbook must not start with '-': "--version"`},
		{"inventory", `"--list-hosts"`, `inventory must not start with '-': "--list-hosts"`},
		{"inventory", `"-ihosts,"`, `inventory must not start with '-': "-ihosts,"`},
		{"limit", `"-all"`, `limit must not start with '-': "-all"`},
		{"limit", `"--module-path=/tmp"`, `limit must not start with '-': "--module-path=/tmp"`},
		{"tags", `["deploy","-t"]`, `tags must not start with '-': "-t"`},
		{"tags", `["--step"]`, `tags must not start with '-': "--step"`},
		{"skip_tags", `["--start-at-task=x"]`, `skip_tags must not start with '-': "--start-at-task=x"`},
		{"playbook", `"site.yml\n-e x"`, `playbook must not contain NUL or line breaks`},
		{"inventory", `"hosts\u0000"`, `inventory must not contain NUL or line breaks`},
		{"limit", `"web\r"`, `limit must not contain NUL or line breaks`},
		{"tags", `["a\nb"]`, `tags must not contain NUL or line breaks`},
		{"tags", `["a,b"]`, `tags entries must be non-empty and contain no comma: "a,b"`},
		{"skip_tags", `[""]`, `skip_tags entries must be non-empty and contain no comma: ""`},
	} {
		t.Run(tc.field+"="+tc.raw, func(t *testing.T) {
			t.Parallel()
			_, err := ParseTaskRequest(withFields(t, field(tc.field, tc.raw)))
			require.Equal(t, []string{tc.want}, problems(t, err))
		})
	}
	// A dash later in a value is fine.
	got, err := ParseTaskRequest([]byte(`{"task_id":"t1","playbook":"deploy/-app.yml","inventory":"inv/prod-1",
		"limit":"web-1,!db-2","tags":["a-b"],"skip_tags":["c-"]}`))
	require.NoError(t, err)
	require.Equal(t, "deploy/-app.yml", got.Playbook)
	require.Equal(t, []string{"a-b"}, got.Tags)
	require.Equal(t, []string{"c-"}, got.SkipTags)
}

func TestParseTaskRequestRanges(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		field string
		value int
		want  string // "" when accepted
	}{
		{"verbosity", 0, ""},
		{"verbosity", 1, ""},
		{"verbosity", 4, ""},
		{"verbosity", 5, "verbosity must be 0 to 4, got 5"},
		{"verbosity", -1, "verbosity must be 0 to 4, got -1"},
		{"forks", 1, ""},
		{"forks", 500, ""},
		{"forks", 0, "forks must be 1 or more, got 0"},
		{"forks", -3, "forks must be 1 or more, got -3"},
		{"timeout", 1, ""},
		{"timeout", 86400, ""},
		{"timeout", 0, "timeout must be 1 second or more, got 0"},
		{"timeout", -10, "timeout must be 1 second or more, got -10"},
	} {
		raw, err := json.Marshal(tc.value)
		require.NoError(t, err)
		t.Run(tc.field+"="+string(raw), func(t *testing.T) {
			t.Parallel()
			got, err := ParseTaskRequest(withFields(t, field(tc.field, string(raw))))
			if tc.want != "" {
				require.Equal(t, []string{tc.want}, problems(t, err))
				return
			}
			require.NoError(t, err)
			value := map[string]int{"verbosity": got.Verbosity, "forks": got.Forks, "timeout": got.Timeout}[tc.field]
			require.Equal(t, tc.value, value)
		})
	}
}

func TestParseTaskRequestExtraVars(t *testing.T) {
	t.Parallel()
	input := `{"task_id":"t1","playbook":"site.yml","inventory":"hosts","extra_vars":{
		"big": 9007199254740993,
		"huge": 123456789012345678901234567890,
		"neg": -42,
		"float": 1.5,
		"exp": 1e3,
		"s": "{{ lookup('pipe','id') }}",
		"u": "h\u00e9llo \u2713",
		"flag": false,
		"none": null,
		"list": [1, "two", [3], {"four": 4}],
		"nested": {"a": {"b": {"c": [true, null]}}},
		"empty": {}
	}}`
	got, err := ParseTaskRequest([]byte(input))
	require.NoError(t, err)
	require.Equal(t, map[string]any{
		"big":    json.Number("9007199254740993"),
		"huge":   json.Number("123456789012345678901234567890"),
		"neg":    json.Number("-42"),
		"float":  json.Number("1.5"),
		"exp":    json.Number("1e3"),
		"s":      "{{ lookup('pipe','id') }}",
		"u":      "héllo ✓",
		"flag":   false,
		"none":   nil,
		"list":   []any{json.Number("1"), "two", []any{json.Number("3")}, map[string]any{"four": json.Number("4")}},
		"nested": map[string]any{"a": map[string]any{"b": map[string]any{"c": []any{true, nil}}}},
		"empty":  map[string]any{},
	}, got.ExtraVars)

	// Re-encoded, the numbers are written exactly as they came.
	b, err := json.Marshal(got.ExtraVars)
	require.NoError(t, err)
	require.Contains(t, string(b), `"big":9007199254740993`)
	require.Contains(t, string(b), `"huge":123456789012345678901234567890`)
	require.Contains(t, string(b), `"exp":1e3`)
}

func TestInvalidTaskError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		problems []string
		want     string
	}{
		{[]string{"playbook is required"}, "invalid task: playbook is required"},
		{[]string{"a", "b", "c"}, "invalid task: a; b; c"},
	} {
		err := error(&InvalidTaskError{Problems: tc.problems})
		require.EqualError(t, err, tc.want)
		var inv *InvalidTaskError
		require.True(t, errors.As(err, &inv))
		require.Equal(t, tc.problems, inv.Problems)
	}
}

func TestInlineInventory(t *testing.T) {
	t.Parallel()
	for inv, want := range map[string]bool{
		"web1,":             true,
		"web1,web2,":        true,
		"localhost,":        true,
		"hosts":             false,
		"inventory/prod":    false,
		"web1,web2":         false,
		"inventory/a,b.ini": false,
	} {
		r := TaskRequest{Inventory: inv}
		require.Equal(t, want, r.InlineInventory(), inv)
	}
}

func TestValidID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		id   string
		want bool
		msg  string // CheckID's message with what="group_name"
	}{
		{"production", true, ""},
		{"A-Z_a-z_0-9", true, ""},
		{"_", true, ""},
		{strings.Repeat("Z", 128), true, ""},
		{strings.Repeat("Z", 129), false, "group_name is 129 characters long, the limit is 128"},
		{"", false, "group_name is empty"},
		{"a.b", false, `group_name "a.b" may contain only A-Z a-z 0-9 _ -`},
		{"a b", false, `group_name "a b" may contain only A-Z a-z 0-9 _ -`},
		{"*", false, `group_name "*" may contain only A-Z a-z 0-9 _ -`},
		{"a>", false, `group_name "a>" may contain only A-Z a-z 0-9 _ -`},
		{"a/b", false, `group_name "a/b" may contain only A-Z a-z 0-9 _ -`},
		{"a#", false, `group_name "a#" may contain only A-Z a-z 0-9 _ -`},
		{"$share", false, `group_name "$share" may contain only A-Z a-z 0-9 _ -`},
		{"ü", false, `group_name "ü" may contain only A-Z a-z 0-9 _ -`},
		{"ａ", false, `group_name "ａ" may contain only A-Z a-z 0-9 _ -`}, // full-width a
		{"a\x00", false, `group_name "a\x00" may contain only A-Z a-z 0-9 _ -`},
		{"a\n", false, `group_name "a\n" may contain only A-Z a-z 0-9 _ -`},
	} {
		t.Run(tc.id, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, ValidID(tc.id))
			err := CheckID("group_name", tc.id)
			if tc.want {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tc.msg)
		})
	}
}

// runnerJobRequest is the smallest runner job request.
const runnerJobRequest = `{"task_id":"t1","runner_job":{"kwargs":{"playbook":"site.yml","ident":"abc","forks":2}}}`

// runnerJobDefaults is what ParseTaskRequest returns for runnerJobRequest:
// the ordinary defaults, so no caller meets a nil.
func runnerJobDefaults() TaskRequest {
	return TaskRequest{TaskID: "t1", ExtraVars: map[string]any{}, Tags: []string{}, SkipTags: []string{},
		Forks: DefaultForks, RunnerJob: &RunnerJob{Kwargs: json.RawMessage(`{"playbook":"site.yml","ident":"abc","forks":2}`)}}
}

// requireSchemaAgrees checks the task request JSON Schema on one input.
func requireSchemaAgrees(t *testing.T, data []byte, parseErr error) {
	t.Helper()
	v, err := validate.New()
	require.NoError(t, err)
	ok, why := schemaAgrees(v, data, parseErr)
	require.True(t, ok, "%s: %s", data, why)
}

func TestParseTaskRequestRunnerJob(t *testing.T) {
	t.Parallel()
	allNull := `{"task_id":"t1","runner_job":{"kwargs":{"playbook":"site.yml","ident":"abc","forks":2}},
		"playbook":null,"inventory":null,"extra_vars":null,"limit":null,"tags":null,"skip_tags":null,
		"verbosity":null,"check_mode":null,"diff_mode":null,"forks":null,"git_pull":null,"timeout":null}`
	withTimeout := runnerJobDefaults()
	withTimeout.Timeout = 60
	emptyKwargs := runnerJobDefaults()
	emptyKwargs.RunnerJob.Kwargs = json.RawMessage(`{}`)
	for _, tc := range []struct {
		name, input string
		want        TaskRequest
	}{
		{"minimal", runnerJobRequest, runnerJobDefaults()},
		{"timeout", `{"task_id":"t1","runner_job":{"kwargs":{"playbook":"site.yml","ident":"abc","forks":2}},"timeout":60}`, withTimeout},
		{"forbidden fields null", allNull, runnerJobDefaults()},
		{"kwargs compacted", "{\"task_id\":\"t1\",\"runner_job\":{\"kwargs\":{ \"playbook\" : \"site.yml\",\n\"ident\":\"abc\",\t\"forks\":2 }}}", runnerJobDefaults()},
		{"empty kwargs", `{"task_id":"t1","runner_job":{"kwargs":{}}}`, emptyKwargs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseTaskRequest([]byte(tc.input))
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			require.Empty(t, got.Playbook)
			require.Empty(t, got.Inventory)
			requireSchemaAgrees(t, []byte(tc.input), err)

			// Marshalled, it holds only what a runner job may set, and
			// parses back equal.
			b, err := json.Marshal(got)
			require.NoError(t, err)
			want := map[string]any{"task_id": "t1", "runner_job": map[string]any{"kwargs": json.RawMessage(tc.want.RunnerJob.Kwargs)}}
			if tc.want.Timeout != 0 {
				want["timeout"] = tc.want.Timeout
			}
			wantJSON, err := json.Marshal(want)
			require.NoError(t, err)
			require.JSONEq(t, string(wantJSON), string(b))
			again, err := ParseTaskRequest(b)
			require.NoError(t, err)
			require.Equal(t, got, again)
		})
	}
}

// A runner job's kwargs hold the run's arguments: each field they replace
// is refused when set, whatever its value, with one problem naming it.
func TestParseTaskRequestRunnerJobForbiddenFields(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ field, raw string }{
		{"playbook", `"site.yml"`},
		{"playbook", `""`},
		{"playbook", `5`},
		{"inventory", `"hosts"`},
		{"inventory", `"web1,"`},
		{"extra_vars", `{}`},
		{"extra_vars", `{"a":1}`},
		{"limit", `""`},
		{"limit", `"web1"`},
		{"tags", `[]`},
		{"skip_tags", `["slow"]`},
		{"verbosity", `0`},
		{"verbosity", `9`},
		{"check_mode", `false`},
		{"diff_mode", `true`},
		{"forks", `5`},
		{"forks", `"5"`},
		{"git_pull", `false`},
		{"git_pull", `true`},
	} {
		t.Run(tc.field+"="+tc.raw, func(t *testing.T) {
			t.Parallel()
			input := withFieldsOf(t, runnerJobRequest, field(tc.field, tc.raw))
			got, err := ParseTaskRequest(input)
			want := tc.field + ": not with runner_job (its kwargs hold the run's arguments)"
			if tc.field == "git_pull" {
				want = "git_pull: not with runner_job (a shipped directory is not a git checkout)"
			}
			require.Equal(t, []string{want}, problems(t, err))
			require.Equal(t, "t1", got.TaskID, "the id is kept for the failed status")
			requireSchemaAgrees(t, input, err)
		})
	}
}

// runner_job must be {"kwargs": {...}} and nothing else.
func TestParseTaskRequestRunnerJobShape(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw  string
		want []string
	}{
		{`"site.yml"`, []string{`runner_job must be an object with "kwargs", got a string`}},
		{`[]`, []string{`runner_job must be an object with "kwargs", got an array`}},
		{`[{"kwargs":{}}]`, []string{`runner_job must be an object with "kwargs", got an array`}},
		{`1`, []string{`runner_job must be an object with "kwargs", got a number`}},
		{`true`, []string{`runner_job must be an object with "kwargs", got a boolean`}},
		{`false`, []string{`runner_job must be an object with "kwargs", got a boolean`}},
		{`{}`, []string{"runner_job.kwargs is required"}},
		{`{"kwargs":null}`, []string{"runner_job.kwargs must be a JSON object, got null"}},
		{`{"kwargs":[]}`, []string{"runner_job.kwargs must be a JSON object, got an array"}},
		{`{"kwargs":"playbook=site.yml"}`, []string{"runner_job.kwargs must be a JSON object, got a string"}},
		{`{"kwargs":3}`, []string{"runner_job.kwargs must be a JSON object, got a number"}},
		{`{"kwargs":{},"x":1}`, []string{`runner_job: unknown field "x" (accepted: kwargs)`}},
		{`{"kwargs":{},"Kwargs":{},"ident":"a"}`, []string{`runner_job: unknown fields "Kwargs", "ident" (accepted: kwargs)`}},
		{`{"x":null}`, []string{`runner_job: unknown field "x" (accepted: kwargs)`, "runner_job.kwargs is required"}},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			t.Parallel()
			input := withFieldsOf(t, runnerJobRequest, field("runner_job", tc.raw))
			got, err := ParseTaskRequest(input)
			require.Equal(t, tc.want, problems(t, err))
			require.Equal(t, "t1", got.TaskID)
			require.Nil(t, got.RunnerJob)
			requireSchemaAgrees(t, input, err)
		})
	}
	// Not an object, it is not clearly a runner job: the other fields are
	// not judged, one problem is reported.
	input := []byte(`{"task_id":"t1","runner_job":"x","playbook":"site.yml","inventory":"hosts"}`)
	_, err := ParseTaskRequest(input)
	require.Equal(t, []string{`runner_job must be an object with "kwargs", got a string`}, problems(t, err))
	requireSchemaAgrees(t, input, err)
	input = []byte(`{"task_id":"t1","runner_job":[]}`)
	_, err = ParseTaskRequest(input)
	require.Equal(t, []string{`runner_job must be an object with "kwargs", got an array`}, problems(t, err))
	requireSchemaAgrees(t, input, err)
}

// runner_job null is no runner job: an ordinary task, playbook and
// inventory required.
func TestParseTaskRequestRunnerJobNull(t *testing.T) {
	t.Parallel()
	input := withFields(t, field("runner_job", "null"))
	got, err := ParseTaskRequest(input)
	require.NoError(t, err)
	require.Equal(t, defaultRequest(), got)
	requireSchemaAgrees(t, input, err)

	input = []byte(`{"task_id":"t1","runner_job":null}`)
	_, err = ParseTaskRequest(input)
	require.Equal(t, []string{"playbook is required", "inventory is required"}, problems(t, err))
	requireSchemaAgrees(t, input, err)
}

// Every problem of a runner job is reported at once, the job's first.
func TestParseTaskRequestRunnerJobReportsAllProblems(t *testing.T) {
	t.Parallel()
	input := []byte(`{"task_id":"t-9","runner_job":{"kwargs":[]},"forks":2,"playbook":"site.yml","timeout":0,"x":1}`)
	got, err := ParseTaskRequest(input)
	require.Equal(t, "t-9", got.TaskID)
	require.Equal(t, []string{
		`unknown field "x" (accepted: task_id, playbook, inventory, extra_vars, limit, tags, skip_tags, verbosity, ` +
			"check_mode, diff_mode, forks, timeout, git_pull, runner_job, job, parameters)",
		"runner_job.kwargs must be a JSON object, got an array",
		"playbook: not with runner_job (its kwargs hold the run's arguments)",
		"forks: not with runner_job (its kwargs hold the run's arguments)",
		"timeout must be 1 second or more, got 0",
	}, problems(t, err))
	requireSchemaAgrees(t, input, err)
}

// A runner job built in Go, as a client would, is written without the
// defaults it may not send; a field set anyway is written, to be refused.
func TestTaskRequestMarshalRunnerJob(t *testing.T) {
	t.Parallel()
	job := &RunnerJob{Kwargs: json.RawMessage(`{"ident":"a"}`)}
	for _, req := range []TaskRequest{{TaskID: "t1", RunnerJob: job}, runnerJobDefaults()} {
		req.RunnerJob = job
		b, err := json.Marshal(req)
		require.NoError(t, err)
		require.JSONEq(t, `{"task_id":"t1","runner_job":{"kwargs":{"ident":"a"}}}`, string(b))
		_, err = ParseTaskRequest(b)
		require.NoError(t, err)
	}

	b, err := json.Marshal(TaskRequest{TaskID: "t1", Playbook: "site.yml", Forks: 3, RunnerJob: job})
	require.NoError(t, err)
	require.JSONEq(t, `{"task_id":"t1","playbook":"site.yml","forks":3,"runner_job":{"kwargs":{"ident":"a"}}}`, string(b))
	_, err = ParseTaskRequest(b)
	require.Equal(t, []string{
		"playbook: not with runner_job (its kwargs hold the run's arguments)",
		"forks: not with runner_job (its kwargs hold the run's arguments)",
	}, problems(t, err))

	b, err = json.Marshal(&TaskRequest{TaskID: "t1", RunnerJob: &RunnerJob{}})
	require.NoError(t, err)
	require.JSONEq(t, `{"task_id":"t1","runner_job":{"kwargs":null}}`, string(b))
}

// jobRequest is the smallest named-job request.
const jobRequest = `{"task_id":"t1","job":"deploy"}`

// jobDefaults is what ParseTaskRequest returns for jobRequest.
func jobDefaults() TaskRequest {
	return TaskRequest{TaskID: "t1", Job: "deploy", ExtraVars: map[string]any{}, Tags: []string{}, SkipTags: []string{},
		Forks: DefaultForks}
}

// A request with job names no playbook or inventory; its parameters are
// any JSON value, numbers exact; every other option is allowed.
func TestParseTaskRequestJob(t *testing.T) {
	t.Parallel()
	with := func(f func(*TaskRequest)) TaskRequest {
		r := jobDefaults()
		f(&r)
		return r
	}
	for _, tc := range []struct {
		name, input string
		want        TaskRequest
	}{
		{"minimal", jobRequest, jobDefaults()},
		{"list", `{"task_id":"t1","job":"deploy","parameters":["param1","param2"]}`,
			with(func(r *TaskRequest) { r.Parameters = []any{"param1", "param2"} })},
		{"object", `{"task_id":"t1","job":"deploy","parameters":{"big":9007199254740993,"f":1.50,"n":null,"l":[{}]}}`,
			with(func(r *TaskRequest) {
				r.Parameters = map[string]any{"big": json.Number("9007199254740993"), "f": json.Number("1.50"), "n": nil,
					"l": []any{map[string]any{}}}
			})},
		{"string", `{"task_id":"t1","job":"deploy","parameters":"{{ lookup('pipe','id') }}"}`,
			with(func(r *TaskRequest) { r.Parameters = "{{ lookup('pipe','id') }}" })},
		{"number", `{"task_id":"t1","job":"deploy","parameters":-1e400}`,
			with(func(r *TaskRequest) { r.Parameters = json.Number("-1e400") })},
		{"false", `{"task_id":"t1","job":"deploy","parameters":false}`, with(func(r *TaskRequest) { r.Parameters = false })},
		{"empty list", `{"task_id":"t1","job":"deploy","parameters":[]}`, with(func(r *TaskRequest) { r.Parameters = []any{} })},
		{"null parameters, playbook and inventory", `{"task_id":"t1","job":"deploy","parameters":null,"playbook":null,"inventory":null,"runner_job":null}`,
			jobDefaults()},
		{"every option", `{"task_id":"t1","job":"Deploy.app-2_x","extra_vars":{"a":1},"limit":"web1","tags":["x"],
			"skip_tags":["y"],"verbosity":2,"check_mode":true,"diff_mode":true,"forks":3,"timeout":60,"git_pull":true}`,
			with(func(r *TaskRequest) {
				r.Job, r.ExtraVars, r.Limit, r.Tags, r.SkipTags = "Deploy.app-2_x", map[string]any{"a": json.Number("1")}, "web1", []string{"x"}, []string{"y"}
				r.Verbosity, r.CheckMode, r.DiffMode, r.Forks, r.Timeout, r.GitPull = 2, true, true, 3, 60, true
			})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseTaskRequest([]byte(tc.input))
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			requireSchemaAgrees(t, []byte(tc.input), err)

			// Marshalled, it names no playbook or inventory, and parses
			// back equal.
			b, err := json.Marshal(got)
			require.NoError(t, err)
			var keys map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(b, &keys))
			require.NotContains(t, keys, "playbook")
			require.NotContains(t, keys, "inventory")
			require.NotContains(t, keys, "runner_job")
			again, err := ParseTaskRequest(b)
			require.NoError(t, err, "%s", b)
			require.Equal(t, got, again)
		})
	}
}

// What a job may not have is refused, each with one problem; the id is
// kept for the failed status.
func TestParseTaskRequestJobRefusals(t *testing.T) {
	t.Parallel()
	pattern := "may contain only A-Z a-z 0-9 _ . - and must not start with . or -"
	for _, tc := range []struct {
		name, input string
		want        []string
	}{
		{"playbook", `{"task_id":"t1","job":"deploy","playbook":"site.yml"}`,
			[]string{"playbook: not with job (the job names its playbooks)"}},
		{"empty playbook", `{"task_id":"t1","job":"deploy","playbook":""}`,
			[]string{"playbook: not with job (the job names its playbooks)"}},
		{"inventory", `{"task_id":"t1","job":"deploy","inventory":"web1,"}`,
			[]string{"inventory: not with job (the job names its inventory)"}},
		{"both", `{"task_id":"t1","job":"deploy","playbook":"site.yml","inventory":"hosts"}`,
			[]string{"playbook: not with job (the job names its playbooks)", "inventory: not with job (the job names its inventory)"}},
		{"runner job", `{"task_id":"t1","job":"deploy","runner_job":{"kwargs":{}}}`,
			[]string{"job: not with runner_job (the shipped directory holds the playbooks)"}},
		{"runner job, parameters", `{"task_id":"t1","runner_job":{"kwargs":{}},"parameters":[1]}`,
			[]string{"parameters: only with job"}},
		{"parameters without job", `{"task_id":"t1","playbook":"site.yml","inventory":"hosts","parameters":{}}`,
			[]string{"parameters: only with job"}},
		{"parameters, job null", `{"task_id":"t1","playbook":"site.yml","inventory":"hosts","job":null,"parameters":0}`,
			[]string{"parameters: only with job"}},
		{"job number", `{"task_id":"t1","job":5}`, []string{"job must be a string, got a number"}},
		{"job list", `{"task_id":"t1","job":["a"],"playbook":"x"}`,
			[]string{"job must be a string, got an array", "playbook: not with job (the job names its playbooks)"}},
		{"job empty", `{"task_id":"t1","job":""}`, []string{"job is empty"}},
		{"job dot", `{"task_id":"t1","job":".hidden"}`, []string{`job ".hidden" ` + pattern}},
		{"job dash", `{"task_id":"t1","job":"-x"}`, []string{`job "-x" ` + pattern}},
		{"job slash", `{"task_id":"t1","job":"a/b"}`, []string{`job "a/b" ` + pattern}},
		{"job space", `{"task_id":"t1","job":"a b"}`, []string{`job "a b" ` + pattern}},
		{"job unicode", `{"task_id":"t1","job":"tâche"}`, []string{`job "tâche" ` + pattern}},
		{"job too long", `{"task_id":"t1","job":"` + strings.Repeat("j", 129) + `"}`,
			[]string{"job is 129 characters long, the limit is 128"}},
		{"job and bad forks", `{"task_id":"t1","job":"deploy","forks":0,"extra_vars":{"1a":1}}`,
			[]string{"forks must be 1 or more, got 0", `extra_vars: "1a" is not a variable name (letters, digits and _, not starting with a digit)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseTaskRequest([]byte(tc.input))
			require.Equal(t, tc.want, problems(t, err))
			require.Equal(t, "t1", got.TaskID)
			requireSchemaAgrees(t, []byte(tc.input), err)
		})
	}
}

func TestValidJobName(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"a", "test_job_1", "Deploy.app-2", "_x", "0", "1.0", "yes", strings.Repeat("j", 128), "a..b", "a-", "a."} {
		require.True(t, ValidJobName(ok), ok)
		require.NoError(t, CheckJobName("job", ok))
	}
	for _, bad := range []string{"", ".a", "-a", "a b", "a/b", "a:b", "a\n", "é", strings.Repeat("j", 129), "a*", "a@b"} {
		require.False(t, ValidJobName(bad), bad)
		require.Error(t, CheckJobName("job", bad))
	}
	require.EqualError(t, CheckJobName("job name", strings.Repeat("é", 129)), "job name is 129 characters long, the limit is 128")
	require.EqualError(t, CheckJobName("job name", strings.Repeat("é", 100)),
		`job name "`+strings.Repeat("é", 80)+`…" may contain only A-Z a-z 0-9 _ . - and must not start with . or -`)
}

// A named job built in Go, as a client would, is written without the
// playbook and inventory it may not send; one set anyway is written, to
// be refused.
func TestTaskRequestMarshalJob(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(TaskRequest{TaskID: "t1", Job: "deploy", Parameters: map[string]any{"n": 1}})
	require.NoError(t, err)
	require.JSONEq(t, `{"task_id":"t1","job":"deploy","parameters":{"n":1},"extra_vars":null,"tags":null,"skip_tags":null,
		"verbosity":0,"check_mode":false,"diff_mode":false,"forks":0,"git_pull":false}`, string(b))

	b, err = json.Marshal(jobDefaults())
	require.NoError(t, err)
	got, err := ParseTaskRequest(b)
	require.NoError(t, err)
	require.Equal(t, jobDefaults(), got)

	r := jobDefaults()
	r.Playbook = "site.yml"
	b, err = json.Marshal(r)
	require.NoError(t, err)
	_, err = ParseTaskRequest(b)
	require.Equal(t, []string{"playbook: not with job (the job names its playbooks)"}, problems(t, err))

	r = defaultRequest()
	r.Parameters = []any{"x"}
	b, err = json.Marshal(r)
	require.NoError(t, err)
	_, err = ParseTaskRequest(b)
	require.Equal(t, []string{"parameters: only with job"}, problems(t, err))
}
