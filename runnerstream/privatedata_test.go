//go:build unix

package runnerstream

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pddCopy copies testdata/pdd/<name> to a new directory and returns it,
// symlinks resolved.
func pddCopy(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pdd")
	require.NoError(t, os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "pdd", name))))
	real, err := filepath.EvalSymlinks(dir)
	require.NoError(t, err)
	return real
}

// pddWrite writes files (relative path: content) into dir.
func pddWrite(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	}
}

func TestLoadPrivateDataDirYAML(t *testing.T) {
	p, err := LoadPrivateDataDir(pddCopy(t, "full"))
	require.NoError(t, err)
	tmpl := "{{ lookup('pipe', 'id') }}"
	require.Equal(t, map[string]any{
		"greeting": "hello", "enabled": true, "mode": json.Number("493"), "duration": json.Number("90"),
		"ratio": 1500.0, "version": "1.10", "nothing": nil,
		"defaults": map[string]any{"retries": json.Number("3"), "template": tmpl},
		"service": map[string]any{"retries": json.Number("3"), "template": tmpl, "name": "web",
			"ports": []any{json.Number("80"), json.Number("443")}},
	}, p.ExtraVars)
	require.Equal(t, map[string]string{"ANSIBLE_NOCOWS": "True", "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "False",
		"MY_MODE": "493", "MY_RATIO": "1500.0", "MY_TEXT": "hello world", "MY_EMPTY": "None"}, p.EnvVars)
	require.Equal(t, []string{"--tags", "demo,hello", "--skip-tags", "never", "-D", "--check"}, p.Cmdline)
	require.Equal(t, Settings{JobTimeout: 300 * time.Second, IdleTimeout: 60500 * time.Millisecond,
		PexpectTimeout: 2 * time.Second, SuppressOutputFile: true, FactCache: "facts",
		Extra: map[string]any{"nats_subject_id": "hostname"}}, p.Settings)
	require.False(t, p.HasPasswords || p.HasSSHKey || p.HasRawArgs)
}

func TestLoadPrivateDataDirJSON(t *testing.T) {
	dir := pddCopy(t, "json")
	p, err := LoadPrivateDataDir(dir)
	require.NoError(t, err)
	require.Equal(t, dir, p.Dir)
	require.Equal(t, map[string]any{"greeting": "hi", "count": json.Number("3"), "ratio": 1000.0,
		"nested": map[string]any{"a": []any{json.Number("1"), "two", nil, true}}}, p.ExtraVars)
	require.Equal(t, map[string]string{"ANSIBLE_NOCOLOR": "True", "MY_COUNT": "3", "MY_RATIO": "1000.0",
		"MY_NULL": "None", "MY_TEXT": `a "quoted" value`}, p.EnvVars)
	require.Equal(t, []string{"-e", `{"from_cmdline": "x", "n": 2}`, "--start-at-task", "Say hello",
		"-l", "web", "--flush-cache"}, p.Cmdline)
	require.Equal(t, Settings{JobTimeout: 10 * time.Second, FactCacheType: "jsonfile", Extra: map[string]any{}}, p.Settings)
}

func TestLoadPrivateDataDirEmpty(t *testing.T) {
	p, err := LoadPrivateDataDir(pddCopy(t, "basic"))
	require.NoError(t, err)
	require.Nil(t, p.ExtraVars)
	require.Nil(t, p.EnvVars)
	require.Nil(t, p.Cmdline)
	require.Zero(t, p.Settings.JobTimeout)

	dir := pddCopy(t, "basic")
	pddWrite(t, dir, map[string]string{"env/extravars": "", "env/envvars": "# nothing\n", "env/settings": "{}",
		"env/passwords": "{}", "env/ssh_key": "", "env/cmdline": "  \n"})
	p, err = LoadPrivateDataDir(dir)
	require.NoError(t, err)
	require.Equal(t, map[string]any{}, p.ExtraVars, "an empty env/extravars still exists")
	require.Empty(t, p.EnvVars)
	require.Empty(t, p.Cmdline)
	require.False(t, p.HasPasswords || p.HasSSHKey)
}

func TestLoadPrivateDataDirSecretFiles(t *testing.T) {
	dir := pddCopy(t, "basic")
	pddWrite(t, dir, map[string]string{"env/passwords": "not: [valid s3cr3t", "env/ssh_key": "-----BEGIN s3cr3t",
		"args": "ansible-playbook x.yml"})
	p, err := LoadPrivateDataDir(dir)
	require.NoError(t, err, "passwords are only noted, never parsed into an error")
	require.True(t, p.HasPasswords)
	require.True(t, p.HasSSHKey)
	require.True(t, p.HasRawArgs)
}

func TestLoadPrivateDataDirBadFiles(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"yaml syntax", map[string]string{"env/envvars": "A: 1\nB: [1\n"}, []string{"env/envvars: not valid JSON or YAML", "line"}},
		{"not a mapping", map[string]string{"env/settings": "- job_timeout\n"}, []string{"env/settings: holds a list, not a mapping"}},
		{"json list", map[string]string{"env/extravars": `["a"]`}, []string{"env/extravars: holds a list"}},
		{"scalar", map[string]string{"env/envvars": "just text"}, []string{"env/envvars: holds a string"}},
		{"two documents", map[string]string{"env/extravars": "a: 1\n---\nb: 2\n"}, []string{"env/extravars", "more than one YAML document"}},
		{"not utf-8", map[string]string{"env/extravars": "a: \xff\n"}, []string{"env/extravars: not UTF-8 text"}},
		{"cmdline quote", map[string]string{"env/cmdline": `--limit "web`}, []string{"env/cmdline: no closing quotation"}},
		{"cmdline escape", map[string]string{"env/cmdline": `--limit web\`}, []string{"env/cmdline: no escaped character"}},
		{"cmdline utf-8", map[string]string{"env/cmdline": "-l \xff"}, []string{"env/cmdline is not UTF-8 text"}},
		{"timeout type", map[string]string{"env/settings": "job_timeout: soon\n"}, []string{"env/settings: job_timeout: must be a number"}},
		{"timeout negative", map[string]string{"env/settings": `{"idle_timeout": -1}`}, []string{"env/settings: idle_timeout: must be a number of seconds from 0"}},
		{"fact_cache type", map[string]string{"env/settings": "fact_cache: [a]\n"}, []string{"env/settings: fact_cache: must be a string"}},
		{"envvar list", map[string]string{"env/envvars": "PATHS: [a, b]\n"}, []string{"env/envvars: PATHS: the value is a list"}},
		{"envvar name", map[string]string{"env/envvars": `{"A=B": "x"}`}, []string{`env/envvars: "A=B" is not an environment variable name`}},
		{"envvar nul", map[string]string{"env/envvars": `{"A": "x\u0000y"}`}, []string{"env/envvars: A: the value contains a NUL"}},
		{"yaml tag", map[string]string{"env/extravars": "a: !!python/object x\n"}, []string{"env/extravars: not supported (line 1): a YAML tag other than"}},
		{"yaml bad int", map[string]string{"env/extravars": "a: !!int x\n"}, []string{"env/extravars: not valid YAML (line 1)"}},
		{"yaml key", map[string]string{"env/extravars": "? [a]\n: 1\n"}, []string{"env/extravars: not supported (line 1): a mapping key that is a list"}},
		{"aliases", map[string]string{"env/extravars": pddLaughs}, []string{"env/extravars: not valid YAML: too many nodes"}},
		{"directory", map[string]string{"env/settings/x": "a"}, []string{"env/settings is not a regular file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := pddCopy(t, "basic")
			pddWrite(t, dir, tc.files)
			_, err := LoadPrivateDataDir(dir)
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

// pddLaughs is a billion-laughs YAML document.
var pddLaughs = func() string {
	s := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h"} {
		s += n + ": &" + n + " [" + strings.Repeat("*"+prev+", ", 9) + "*" + prev + "]\n"
		prev = n
	}
	return s
}()

func TestLoadPrivateDataDirSymlinks(t *testing.T) {
	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "vars"), []byte("a: 1\n"), 0o600))
	dir := pddCopy(t, "basic")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "env"), 0o700))
	require.NoError(t, os.Symlink(filepath.Join(outside, "vars"), filepath.Join(dir, "env", "extravars")))
	_, err := LoadPrivateDataDir(dir)
	require.ErrorContains(t, err, "env/extravars is a symlink leading outside the private data directory")

	dir = pddCopy(t, "basic")
	pddWrite(t, dir, map[string]string{"vars.yml": "a: 1\n"})
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "env"), 0o700))
	require.NoError(t, os.Symlink("../vars.yml", filepath.Join(dir, "env", "extravars")))
	p, err := LoadPrivateDataDir(dir)
	require.NoError(t, err, "a symlink inside is fine")
	require.Equal(t, map[string]any{"a": json.Number("1")}, p.ExtraVars)

	dir = pddCopy(t, "basic")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "env"), 0o700))
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "env", "cmdline"), 0o600))
	_, err = LoadPrivateDataDir(dir)
	require.ErrorContains(t, err, "env/cmdline is not a regular file", "a FIFO would block the read")
	_, err = LoadPrivateDataDir(filepath.Join(dir, "missing"))
	require.ErrorContains(t, err, "private data directory")
}

func TestLoadPrivateDataDirNeverQuotesContent(t *testing.T) {
	const secret = "s3cr3t-Value"
	for _, content := range []string{
		"A: \"" + secret + "\n",        // unterminated quote
		"A: " + secret + "\n  B: x\n",  // bad indentation
		"{\"A\": \"" + secret + "\"\n", // broken JSON
		"A: *" + secret + "\n",         // unknown anchor: the parser names it
		"A: {B: " + secret + "}\n",     // a mapping value
		"A: !" + secret + " x\n",       // an unknown tag
	} {
		for _, file := range []string{"env/envvars", "env/extravars", "env/settings"} {
			dir := pddCopy(t, "basic")
			pddWrite(t, dir, map[string]string{file: content})
			_, err := LoadPrivateDataDir(dir)
			if err != nil {
				require.NotContains(t, err.Error(), secret, "%s: %q", file, content)
				require.Contains(t, err.Error(), file)
			}
		}
	}
}

// pddPython runs Python 3 with PyYAML, as ansible-runner has them (the
// test set-up installs both with it).
func pddPython(t *testing.T, script string, input []byte) []byte {
	t.Helper()
	cmd := exec.Command("/usr/bin/python3", "-c", script)
	cmd.Stdin = strings.NewReader(string(input))
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		require.NoError(t, err, "python3: %s", ee.Stderr)
	}
	require.NoError(t, err)
	return out
}

// TestPrivateDataYAMLMatchesPyYAML compares the parser with what
// ansible-runner's loader (json, then PyYAML's safe_load) makes of the
// same files.
func TestPrivateDataYAMLMatchesPyYAML(t *testing.T) {
	docs := []string{
		"a: yes\nb: No\nc: on\nd: OFF\ne: true\nf: y\ng: n\n",
		"a: 0755\nb: 0x1F\nc: 0b101\nd: 1_000\ne: 1:30\nf: -0\ng: +12\nh: 09\ni: 0o17\nj: 12345678901234567890\n",
		"a: 1.5e3\nb: 1.5e+3\nc: 1.\nd: .5\ne: 1:30.5\ng: 6.02e+23\nh: 1e-7\n",
		"a: ~\nb: null\nc: Null\nd:\ne: ''\nf: \"yes\"\ng: 'no'\nh: !!str 1\ni: !!int \"7\"\n",
		"x: &x {p: 1, q: 2}\ny:\n  <<: *x\n  q: 3\nz:\n  <<: [*x, {r: 4}]\n",
		"k: |\n  line one\n  line two\nl: >\n  folded\n  text\n",
		`{"a": 1, "b": 1.0, "c": 1e3, "d": [true, false, null], "e": {"f": "g"}}`,
		"{}",
		"1: one\n2.5: two\nnull: three\n",
	}
	script := `import sys, json, yaml
out = []
for doc in json.load(sys.stdin):
    try:
        v = json.loads(doc)
    except ValueError:
        v = None
    if not v:
        v = yaml.safe_load(doc)
    out.append({str(k): x for k, x in v.items()})
print(json.dumps(out))`
	in, err := json.Marshal(docs)
	require.NoError(t, err)
	var want []any
	require.NoError(t, json.Unmarshal(pddPython(t, script, in), &want))
	for i, doc := range docs {
		m, err := pddParseMapping([]byte(doc))
		require.NoError(t, err, doc)
		b, err := json.Marshal(m)
		require.NoError(t, err, doc)
		var got any
		require.NoError(t, json.Unmarshal(b, &got))
		require.Equal(t, want[i], got, doc)
	}
}

// TestPrivateDataShlexMatchesPython compares the splitter of env/cmdline
// with Python's shlex.split, which ansible-runner uses.
func TestPrivateDataShlexMatchesPython(t *testing.T) {
	inputs := []string{
		`a b  c`, `--limit "web servers" -e 'a=1 b=2'`, `''`, `"" x`, `a\ b`, `"a\x\\"`, `'a\'`,
		`x#y # z`, "a\tb\nc\rd", `"a"'b'c`, `a"b c"d`, `\"`, `"\""`, `"\$x"`, `-e '{"a": "b c"}'`,
		"é \"ü\" '∑'", "a\vb", ``, `   `, `a\`, `"a`, `'a`,
	}
	script := `import sys, json, shlex
out = []
for s in json.load(sys.stdin):
    try:
        out.append(shlex.split(s))
    except ValueError as e:
        out.append(None)
print(json.dumps(out))`
	in, err := json.Marshal(inputs)
	require.NoError(t, err)
	var want [][]string
	require.NoError(t, json.Unmarshal(pddPython(t, script, in), &want))
	for i, s := range inputs {
		got, err := pddShlexSplit(s)
		if want[i] == nil {
			require.Error(t, err, s)
			continue
		}
		require.NoError(t, err, s)
		if len(want[i]) == 0 {
			require.Empty(t, got, s)
			continue
		}
		require.Equal(t, want[i], got, s)
	}
}
