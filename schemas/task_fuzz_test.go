package schemas

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas/jsonschema/validate"
)

// FuzzParseTaskRequest feeds arbitrary bytes to ParseTaskRequest. It must
// never panic; an id it returns is always valid; and a request it accepts
// obeys every documented rule and survives a JSON round trip unchanged.
func FuzzParseTaskRequest(f *testing.F) {
	for _, s := range []string{
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
	} {
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
		require.NotEmpty(t, req.Playbook)
		require.NotEmpty(t, req.Inventory)
		require.NotNil(t, req.ExtraVars)
		require.NotNil(t, req.Tags)
		require.NotNil(t, req.SkipTags)
		for _, v := range []string{req.Playbook, req.Inventory, req.Limit} {
			require.False(t, strings.HasPrefix(v, "-"), "accepted an option-like value %q", v)
			require.False(t, strings.ContainsAny(v, "\x00\r\n"), "accepted a line break or NUL in %q", v)
		}
		for _, tag := range append(append([]string{}, req.Tags...), req.SkipTags...) {
			require.NotEmpty(t, tag)
			require.False(t, strings.HasPrefix(tag, "-"), "accepted an option-like tag %q", tag)
			require.False(t, strings.ContainsAny(tag, ",\x00\r\n"), "accepted tag %q", tag)
		}

		b, err := json.Marshal(req)
		require.NoError(t, err)
		again, err := ParseTaskRequest(b)
		require.NoError(t, err, "re-marshalled request refused: %s", b)
		require.Equal(t, req, again)
	})
}
