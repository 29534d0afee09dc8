package worker

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// playbookTree builds a playbook directory next to a directory that must stay
// out of reach:
//
//	root/outside/secret.yml
//	root/pb/site.yml, roles/web/tasks/main.yml, inventory/hosts
//	root/pb/link-in.yml -> site.yml
//	root/pb/abs-in.yml -> root/pb/site.yml (absolute target, still inside)
//	root/pb/roles-link -> roles
//	root/pb/link-out.yml -> ../outside/secret.yml
//	root/pb/abs-out.yml -> root/outside/secret.yml
//	root/pb/linkdir -> ../outside
//	root/pb/dangling.yml -> nowhere.yml
//	root/pb-link -> pb
func playbookTree(t *testing.T) (root, base string) {
	t.Helper()
	root = t.TempDir()
	base = filepath.Join(root, "pb")
	for _, d := range []string{"outside", "pb/roles/web/tasks", "pb/inventory"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	for _, f := range []string{"outside/secret.yml", "pb/site.yml", "pb/roles/web/tasks/main.yml", "pb/inventory/hosts"} {
		require.NoError(t, os.WriteFile(filepath.Join(root, f), []byte("- hosts: all\n"), 0o644))
	}
	for link, target := range map[string]string{
		"pb/link-in.yml":   "site.yml",
		"pb/abs-in.yml":    filepath.Join(base, "site.yml"),
		"pb/roles-link":    "roles",
		"pb/link-out.yml":  "../outside/secret.yml",
		"pb/abs-out.yml":   filepath.Join(root, "outside", "secret.yml"),
		"pb/linkdir":       "../outside",
		"pb/dangling.yml":  "nowhere.yml",
		"pb-link":          "pb",
		"pb/inventory/up":  "../../outside",
		"pb/roles/web/esc": "../../../outside/secret.yml",
	} {
		require.NoError(t, os.Symlink(target, filepath.Join(root, link)))
	}
	return root, base
}

func TestResolveInside(t *testing.T) {
	t.Parallel()
	root, base := playbookTree(t)
	const outside = "leads outside the playbook directory"
	for _, tc := range []struct {
		name, rel string
		want      string // the resolved path, when accepted
		err       string // a part of the error, when refused
		notFound  bool   // the error wraps ErrNotFound
	}{
		{name: "file", rel: "site.yml", want: "site.yml"},
		{name: "nested", rel: "roles/web/tasks/main.yml", want: "roles/web/tasks/main.yml"},
		{name: "inventory directory", rel: "inventory", want: "inventory"},
		{name: "dot slash", rel: "./site.yml", want: "site.yml"},
		{name: "dot dot that stays inside", rel: "roles/../site.yml", want: "site.yml"},
		{name: "double slash", rel: "roles//web/tasks/main.yml", want: "roles/web/tasks/main.yml"},
		{name: "symlink inside to inside", rel: "link-in.yml", want: "link-in.yml"},
		{name: "absolute symlink to inside", rel: "abs-in.yml", want: "abs-in.yml"},
		{name: "through a symlinked directory inside", rel: "roles-link/web/tasks/main.yml", want: "roles-link/web/tasks/main.yml"},
		{name: "missing", rel: "missing.yml", err: `playbook "missing.yml": not found in the playbook directory`, notFound: true},
		{name: "missing nested", rel: "roles/db/tasks/main.yml", err: `playbook "roles/db/tasks/main.yml": not found`, notFound: true},
		{name: "dangling symlink", rel: "dangling.yml", err: `playbook "dangling.yml": not found`, notFound: true},
		{name: "empty", rel: "", err: "playbook is empty"},
		{name: "absolute inside", rel: filepath.Join(base, "site.yml"), err: "must be a path relative to the playbook directory"},
		{name: "absolute outside", rel: "/etc/passwd", err: `playbook "/etc/passwd" must be a path relative to the playbook directory`},
		{name: "parent", rel: "..", err: outside},
		{name: "dot dot", rel: "../outside/secret.yml", err: `playbook "../outside/secret.yml" ` + outside},
		{name: "dot dot x", rel: "../x", err: outside},
		{name: "dot dot after a name", rel: "a/../../x", err: `playbook "a/../../x" ` + outside},
		{name: "dot dot after nested names", rel: "roles/web/../../../outside/secret.yml", err: outside},
		{name: "symlink to outside", rel: "link-out.yml", err: `playbook "link-out.yml" ` + outside},
		{name: "absolute symlink to outside", rel: "abs-out.yml", err: outside},
		{name: "symlinked directory leading out", rel: "linkdir/secret.yml", err: `playbook "linkdir/secret.yml" ` + outside},
		{name: "the symlinked directory itself", rel: "linkdir", err: outside},
		{name: "nested symlinked directory leading out", rel: "inventory/up/secret.yml", err: outside},
		{name: "nested symlink leading out", rel: "roles/web/esc", err: outside},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ResolveInside(base, tc.rel, "playbook")
			if tc.err == "" {
				require.NoError(t, err)
				require.Equal(t, tc.want, got)
				// The result names the same file when joined to the base.
				_, err = os.Stat(filepath.Join(base, got))
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.err)
			require.Equal(t, "", got)
			require.Equal(t, tc.notFound, errors.Is(err, ErrNotFound), "ErrNotFound for %v", err)
		})
	}

	t.Run("base is a symlink", func(t *testing.T) {
		t.Parallel()
		link := filepath.Join(root, "pb-link")
		for rel, want := range map[string]string{"site.yml": "site.yml", "link-in.yml": "link-in.yml", "roles/web/tasks/main.yml": "roles/web/tasks/main.yml"} {
			got, err := ResolveInside(link, rel, "playbook")
			require.NoError(t, err)
			require.Equal(t, want, got)
		}
		_, err := ResolveInside(link, "link-out.yml", "playbook")
		require.ErrorContains(t, err, outside)
	})
	t.Run("the kind of path is named", func(t *testing.T) {
		t.Parallel()
		_, err := ResolveInside(base, "nope", "inventory")
		require.EqualError(t, err, `inventory "nope": not found in the playbook directory`)
		_, err = ResolveInside(base, "../x", "inventory")
		require.EqualError(t, err, `inventory "../x" leads outside the playbook directory`)
	})
	t.Run("missing base", func(t *testing.T) {
		t.Parallel()
		_, err := ResolveInside(filepath.Join(root, "no-such-dir"), "site.yml", "playbook")
		require.ErrorContains(t, err, "playbook directory")
	})
}

func TestAllowed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		patterns []string
		playbook string
		want     bool
	}{
		{"no patterns allow everything", nil, "anything/at/all.yml", true},
		{"empty list allows everything", []string{}, "site.yml", true},
		{"exact name", []string{"site.yml"}, "site.yml", true},
		{"other name", []string{"site.yml"}, "other.yml", false},
		{"star", []string{"*.yml"}, "site.yml", true},
		{"star does not cross directories", []string{"*.yml"}, "deploy/app.yml", false},
		{"directory pattern", []string{"deploy/*.yml"}, "deploy/app.yml", true},
		{"directory pattern, other directory", []string{"deploy/*.yml"}, "admin/wipe.yml", false},
		{"second pattern matches", []string{"deploy/*.yml", "ops/*.yaml"}, "ops/restart.yaml", true},
		{"character class", []string{"app[12].yml"}, "app2.yml", true},
		{"malformed pattern matches nothing", []string{"["}, "[", false},
		{"malformed then good", []string{"[", "site.yml"}, "site.yml", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, Allowed(tc.patterns, tc.playbook))
		})
	}
}

func TestBuildArgs(t *testing.T) {
	t.Parallel()
	base := schemas.TaskRequest{Forks: schemas.DefaultForks}
	with := func(change func(*schemas.TaskRequest)) *schemas.TaskRequest {
		r := base
		change(&r)
		return &r
	}
	for _, tc := range []struct {
		name string
		task *schemas.TaskRequest
		vars string
		want []string
	}{
		{"defaults", &base, "", []string{"-i", "hosts", "site.yml"}},
		{"extra vars file", &base, "/run/aw/t1/vars.yml", []string{"-i", "hosts", "-e", "@/run/aw/t1/vars.yml", "site.yml"}},
		{"limit", with(func(r *schemas.TaskRequest) { r.Limit = "web:!db" }), "", []string{"-i", "hosts", "--limit", "web:!db", "site.yml"}},
		{"one tag", with(func(r *schemas.TaskRequest) { r.Tags = []string{"deploy"} }), "", []string{"-i", "hosts", "--tags", "deploy", "site.yml"}},
		{"tags", with(func(r *schemas.TaskRequest) { r.Tags = []string{"a", "b"} }), "", []string{"-i", "hosts", "--tags", "a,b", "site.yml"}},
		{"skip tags", with(func(r *schemas.TaskRequest) { r.SkipTags = []string{"slow", "net"} }), "", []string{"-i", "hosts", "--skip-tags", "slow,net", "site.yml"}},
		{"empty tag lists", with(func(r *schemas.TaskRequest) { r.Tags, r.SkipTags = []string{}, []string{} }), "", []string{"-i", "hosts", "site.yml"}},
		{"verbosity 1", with(func(r *schemas.TaskRequest) { r.Verbosity = 1 }), "", []string{"-i", "hosts", "-v", "site.yml"}},
		{"verbosity 2", with(func(r *schemas.TaskRequest) { r.Verbosity = 2 }), "", []string{"-i", "hosts", "-vv", "site.yml"}},
		{"verbosity 3", with(func(r *schemas.TaskRequest) { r.Verbosity = 3 }), "", []string{"-i", "hosts", "-vvv", "site.yml"}},
		{"verbosity 4", with(func(r *schemas.TaskRequest) { r.Verbosity = 4 }), "", []string{"-i", "hosts", "-vvvv", "site.yml"}},
		{"check mode", with(func(r *schemas.TaskRequest) { r.CheckMode = true }), "", []string{"-i", "hosts", "--check", "site.yml"}},
		{"diff mode", with(func(r *schemas.TaskRequest) { r.DiffMode = true }), "", []string{"-i", "hosts", "--diff", "site.yml"}},
		{"forks 5 is the default", with(func(r *schemas.TaskRequest) { r.Forks = 5 }), "", []string{"-i", "hosts", "site.yml"}},
		{"forks 1", with(func(r *schemas.TaskRequest) { r.Forks = 1 }), "", []string{"-i", "hosts", "--forks", "1", "site.yml"}},
		{"forks 20", with(func(r *schemas.TaskRequest) { r.Forks = 20 }), "", []string{"-i", "hosts", "--forks", "20", "site.yml"}},
		{"forks unset", with(func(r *schemas.TaskRequest) { r.Forks = 0 }), "", []string{"-i", "hosts", "site.yml"}},
		{"options of the worker only", with(func(r *schemas.TaskRequest) { r.Timeout, r.GitPull, r.TaskID = 60, true, "t1" }), "", []string{"-i", "hosts", "site.yml"}},
		{"everything", &schemas.TaskRequest{TaskID: "t1", Limit: "web1", Tags: []string{"a"}, SkipTags: []string{"b", "c"},
			Verbosity: 2, CheckMode: true, DiffMode: true, Forks: 10, Timeout: 30, GitPull: true,
			ExtraVars: map[string]any{"x": 1}}, "/tmp/v.yml",
			[]string{"-i", "hosts", "-e", "@/tmp/v.yml", "--limit", "web1", "--tags", "a", "--skip-tags", "b,c",
				"-vv", "--check", "--diff", "--forks", "10", "site.yml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := BuildArgs(tc.task, "site.yml", "hosts", tc.vars)
			require.Equal(t, tc.want, got)
			require.Equal(t, "site.yml", got[len(got)-1], "the playbook is always the last argument")
		})
	}
	t.Run("inline inventory and nested playbook", func(t *testing.T) {
		t.Parallel()
		got := BuildArgs(&base, "deploy/app.yml", "web1,web2,", "")
		require.Equal(t, []string{"-i", "web1,web2,", "deploy/app.yml"}, got)
	})
}

// extraVarsInput is what a task might send: every JSON type, nested, plus
// strings that Ansible would template or that YAML would mangle.
const extraVarsInput = `{
	"template": "{{ lookup('pipe', 'touch PWNED') }}",
	"nested": {"level1": {"level2": ["a", {"{{ lookup('pipe', 'touch PWNED_KEY') }}": "{% raw %}x{% endraw %}"}], "n": 1}},
	"list": [1, "two", 3.5, true, null, [], {}],
	"int": 42,
	"negative": -7,
	"zero": 0,
	"big": 9007199254740993,
	"float": 3.25,
	"exponent": 1e3,
	"exponent_frac": 1.5e10,
	"small": 2.5E-3,
	"yes": true,
	"no": false,
	"nothing": null,
	"unicode": "héllo wörld ✓ 日本 🚀",
	"quotes": "it's \"quoted\"\nsecond line\n\ttabbed\\back",
	"yaml_words": ["yes", "no", "on", "off", "null", "~", "1e3", "0x1F", "010", "1_000", ".inf", "12:30"],
	"specials": "a: b # c - [d] {e} *f &g !h |i >j %k @l ` + "`m`" + `",
	"spaces": "  lead and trail  ",
	"long": "word word word word word word word word word word word word word word word word word word word word word word  double  spaces  and more",
	"empty": ""
}`

func TestWriteExtraVarsWithAnsible(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pwned := filepath.Join(dir, "pwned")
	input := strings.ReplaceAll(extraVarsInput, "PWNED_KEY", pwned+"_key")
	input = strings.ReplaceAll(input, "PWNED", pwned)
	var vars map[string]any
	dec := json.NewDecoder(strings.NewReader(input))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&vars))
	require.Equal(t, json.Number("9007199254740993"), vars["big"])

	varsFile := filepath.Join(dir, "vars.yml")
	require.NoError(t, WriteExtraVars(varsFile, vars))
	st, err := os.Stat(varsFile)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "extra vars may hold secrets")

	out := filepath.Join(dir, "out.json")
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, "'"+k+"': "+k)
	}
	playbook := filepath.Join(dir, "play.yml")
	require.NoError(t, os.WriteFile(playbook, []byte(`- hosts: all
  gather_facts: false
  tasks:
    - name: write the variables back
      ansible.builtin.copy:
        content: "{{ {`+strings.Join(keys, ", ")+`} | to_json }}"
        dest: "`+out+`"
`), 0o644))
	inventory := filepath.Join(dir, "hosts")
	require.NoError(t, os.WriteFile(inventory,
		[]byte("localhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n"), 0o644))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := BuildArgs(&schemas.TaskRequest{Forks: schemas.DefaultForks}, playbook, inventory, varsFile)
	cmd := exec.CommandContext(ctx, "ansible-playbook", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ANSIBLE_NOCOLOR=1", "ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, "tmp"),
		"ANSIBLE_HOME="+filepath.Join(dir, "home"), "ANSIBLE_RETRY_FILES_ENABLED=0")
	output, err := cmd.CombinedOutput()
	require.NoError(t, err, "ansible-playbook: %s", output)

	data, err := os.ReadFile(out)
	require.NoError(t, err)
	var got map[string]any
	gotDec := json.NewDecoder(strings.NewReader(string(data)))
	gotDec.UseNumber()
	require.NoError(t, gotDec.Decode(&got), "%s", data)

	// Numbers compare by value: Python writes 1e3 as 1000.0.
	require.Equal(t, normalize(t, vars), normalize(t, got))
	require.Equal(t, json.Number("9007199254740993"), got["big"], "big integers stay exact")
	require.Equal(t, "{{ lookup('pipe', 'touch "+pwned+"') }}", got["template"], "the template is data, not evaluated")
	require.NoFileExists(t, pwned, "a template in extra_vars ran on the worker")
	require.NoFileExists(t, pwned+"_key", "a template in an extra_vars key ran on the worker")
}

// normalize turns every number into a float64 and every other value into
// itself, so that 1e3 and 1000.0 compare equal while strings stay exact.
func normalize(t *testing.T, v any) any {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = normalize(t, e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = normalize(t, e)
		}
		return l
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, err := x.Float64()
		require.NoError(t, err)
		return f
	}
	return v
}

func TestWriteExtraVarsFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "vars.yml")
	require.NoError(t, WriteExtraVars(p, map[string]any{"s": "{{ x }}", "n": json.Number("7"), "b": true,
		"f": json.Number("1e3"), "g": 0.5}))
	st, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	// Every string is marked !unsafe, so Ansible never templates it.
	// Floats carry their tag, since YAML 1.1 would read 1e3 as a string.
	require.Equal(t, "\"b\": true\n\"f\": !!float 1e3\n\"g\": !!float 0.5\n\"n\": 7\n\"s\": !unsafe \"{{ x }}\"\n", string(b))

	// An empty map is still a valid vars file.
	require.NoError(t, WriteExtraVars(p, map[string]any{}))
	b, err = os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, "{}\n", string(b))

	// A directory that does not exist is an error, not a panic.
	require.ErrorContains(t, WriteExtraVars(filepath.Join(dir, "no", "vars.yml"), map[string]any{}), "write extra vars")
}
