package schemas

import (
	"encoding/json"
	"errors"
	"math"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// python runs Python 3 with PyYAML, which seed 003's listener and
// ansible-runner use (the test set-up installs both), on input; script
// prints its answer.
func python(t *testing.T, script string, input []byte) []byte {
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

// pySafeLoad reads each document with yaml.safe_load and returns the values
// as JSON data (keys made strings with str(), dates as their text), or the
// error's class name.
func pySafeLoad(t *testing.T, docs []string) []any {
	t.Helper()
	script := `import sys, json, yaml
def strkeys(v):
    if isinstance(v, dict):
        return {str(k): strkeys(x) for k, x in v.items()}
    if isinstance(v, list):
        return [strkeys(x) for x in v]
    return v
out = []
for doc in json.load(sys.stdin):
    try:
        out.append(strkeys(yaml.safe_load(doc)))
    except yaml.YAMLError as e:
        out.append({"error": type(e).__name__})
print(json.dumps(out, default=str))`
	in, err := json.Marshal(docs)
	require.NoError(t, err)
	var got []any
	require.NoError(t, json.Unmarshal(python(t, script, in), &got))
	require.Len(t, got, len(docs))
	return got
}

// asJSON turns a value into what encoding/json makes of it, to compare with
// what Python printed.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var out any
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

// yamlLoose has no bounds, as in the comparisons with PyYAML.
var yamlLoose = YAML11Options{}

// DecodeYAML11 reads documents as yaml.safe_load does: YAML 1.1 booleans,
// integers (octal, hex, binary, base 60), floats, nulls, merge keys.
func TestDecodeYAML11MatchesPyYAML(t *testing.T) {
	t.Parallel()
	docs := []string{
		"a: yes\nb: No\nc: on\nd: OFF\ne: true\nf: y\ng: n\nh: TRUE\ni: yES\n",
		"a: 0755\nb: 0x1F\nc: 0b101\nd: 1_000\ne: 1:30\nf: -0\ng: +12\nh: 09\ni: 0o17\nj: 12345678901234567890\nk: -0x_A\nl: 190:20:30\n",
		"a: 1.5e3\nb: 1.5e+3\nc: 1.\nd: .5\ne: 1:30.5\ng: 6.02e+23\nh: 1e-7\ni: 1e3\nk: 1_0.5\n",
		"a: ~\nb: null\nc: Null\nd:\ne: ''\nf: \"yes\"\ng: 'no'\nh: !!str 1\ni: !!int \"7\"\nj: !!float '2'\nk: !!bool yes\nl: !!null ''\n",
		"x: &x {p: 1, q: 2}\ny:\n  <<: *x\n  q: 3\nz:\n  <<: [*x, {r: 4}]\n",
		"k: |\n  line one\n  line two\nl: >\n  folded\n  text\nm: |+\n  kept\n\nn: >-\n  a\n\n  b\n",
		`{"a": 1, "b": 1.0, "c": 1e3, "d": [true, false, null], "e": {"f": "g"}}`,
		"{}",
		"1: one\n2.5: two\nnull: three\nno: four\n",
		"---\n# comment\ntest_job_1:  # Job name\n  request_id: 7f23b8ae-3e06-405c-9131-f133aaa12c96  # Unique Id\n  parameters:\n  - param1\n  - param2\n",
		"- a\n- [b, {c: d}]\n- 'single ''quoted'''\n- \"double \\t \\u00e9 \\L\"\n- plain text: not a key\n",
		"a: 2001-12-14\nb: x#y\nc: x # comment\nd: \"#\"\n",
		"%YAML 1.1\n---\na: b\n...\n",
		"",
		"# only a comment\n",
		"--- |\n  text\n",
	}
	want := pySafeLoad(t, docs)
	for i, doc := range docs {
		got, err := DecodeYAML11([]byte(doc), yamlLoose)
		require.NoError(t, err, doc)
		require.Equal(t, want[i], asJSON(t, got), doc)
	}
}

// With JSON, the result is JSON data: floats are json.Number as Python
// writes them, keys must be strings.
func TestDecodeYAML11JSON(t *testing.T) {
	t.Parallel()
	o := YAML11Options{JSON: true}
	got, err := DecodeYAML11([]byte("a: 1.5\nb: 1.0e+16\nc: 1:30.5\nd: 0x1F\ne: 1e3\nf: 100.\ng: 1e-5\nh: 0.0001\ni: -0.0\n"), o)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"a": json.Number("1.5"), "b": json.Number("1e+16"), "c": json.Number("90.5"),
		"d": json.Number("31"), "e": "1e3", "f": json.Number("100.0"), "g": "1e-5", "h": json.Number("0.0001"),
		"i": json.Number("-0.0")}, got)
	got, err = DecodeYAML11([]byte("g: 1.0e-5\n"), o)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"g": json.Number("1e-05")}, got)

	for doc, want := range map[string]string{
		"a: .inf\n":            "not supported (line 1): inf, which JSON cannot hold",
		"a: [-.Inf]\n":         "not supported (line 1): -inf, which JSON cannot hold",
		"a: .NaN\n":            "not supported (line 1): nan, which JSON cannot hold",
		"1: one\n":             "not supported (line 1): a mapping key that is a number; keys must be strings (quote it)",
		"a:\n  yes: 1\n":       "not supported (line 2): a mapping key that is a boolean; keys must be strings (quote it)",
		"~: x\n":               "not supported (line 1): a mapping key that is null; keys must be strings (quote it)",
		"? [a]\n: 1\n":         "not supported (line 1): a mapping key that is a list; keys must be strings (quote it)",
		"1.5: x\n":             "not supported (line 1): a mapping key that is a number; keys must be strings (quote it)",
		"a: !!set {x}\n":       "not supported (line 1): a mapping tagged !!set",
		"a: !!int 1.5\n":       "not valid YAML (line 1): the value does not fit its tag !!int",
		"a: !!bool x\n":        "not valid YAML (line 1): the value does not fit its tag !!bool",
		"<<: [1]\n":            "not valid YAML (line 1): a merge key (<<) needs mappings",
		"a: !!binary x\n":      "not supported (line 1): a YAML tag other than !!str, !!int, !!float, !!bool, !!null, !!timestamp, !unsafe and !vault",
		"a: !!omap [{x: 1}]\n": "not supported (line 1): a list tagged !!omap",
		"a: !foo {x: 1}\n":     "not supported (line 1): a mapping tagged !foo",
	} {
		_, err := DecodeYAML11([]byte(doc), o)
		require.EqualError(t, err, want, doc)
	}
	// Without JSON, tagged lists and mappings are taken as they are, as
	// ansible-runner's env files always were.
	got, err = DecodeYAML11([]byte("a: !!set {x}\n"), YAML11Options{})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"a": map[string]any{"x": nil}}, got)
	// Ansible's !unsafe and !vault are strings (yaml.safe_load refuses them).
	got, err = DecodeYAML11([]byte("a: !unsafe '{{ x }}'\nb: !vault x\n"), o)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"a": "{{ x }}", "b": "x"}, got)
	// Quoted, they are strings.
	got, err = DecodeYAML11([]byte("'1': one\n\"yes\": two\n'~': three\n"), o)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"1": "one", "yes": "two", "~": "three"}, got)
}

// laughs is a billion-laughs document: ten nodes, each level ten times
// the one before, through aliases.
func laughs(levels int) string {
	s := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for i := 1; i < levels; i++ {
		n := string(rune('a' + i))
		s += n + ": &" + n + " [" + strings.Repeat("*"+prev+", ", 9) + "*" + prev + "]\n"
		prev = n
	}
	return s
}

// Aliases are followed, every use counted: a small document cannot expand
// into a huge value, nor nest without end.
func TestDecodeYAML11Bounds(t *testing.T) {
	t.Parallel()
	_, err := DecodeYAML11([]byte(laughs(8)), YAML11Options{MaxNodes: 1 << 20})
	require.EqualError(t, err, "not valid YAML: too many nodes (aliases expanding?)")
	// The document, the mapping, 3 keys, and 11, 1+10*(1+11) and
	// 1+10*(1+121) nodes for a, b and c: 1,358.
	v, err := DecodeYAML11([]byte(laughs(3)), YAML11Options{MaxNodes: 1358})
	require.NoError(t, err)
	require.Len(t, v.(map[string]any)["c"], 10)
	_, err = DecodeYAML11([]byte(laughs(3)), YAML11Options{MaxNodes: 1357})
	require.EqualError(t, err, "not valid YAML: too many nodes (aliases expanding?)")

	long := "s: &s " + strings.Repeat("x", 1000) + "\nl: [*s, *s, *s, *s, *s]\n"
	_, err = DecodeYAML11([]byte(long), YAML11Options{MaxBytes: 5000})
	require.EqualError(t, err, "not valid YAML: the values hold more than 5000 bytes of text (aliases expanding?)")
	_, err = DecodeYAML11([]byte(long), YAML11Options{MaxBytes: 6020})
	require.NoError(t, err)

	// The top value is at depth 0: 12 lists reach depth 11.
	deep := strings.Repeat("[", 12) + strings.Repeat("]", 12)
	_, err = DecodeYAML11([]byte(deep), YAML11Options{MaxDepth: 10})
	require.EqualError(t, err, "not valid YAML: nested more than 10 levels")
	_, err = DecodeYAML11([]byte(deep), YAML11Options{MaxDepth: 11})
	require.NoError(t, err)

	// An anchor used inside its own value makes a cycle: the depth bound
	// ends it.
	_, err = DecodeYAML11([]byte("&a [*a]\n"), YAML11Options{MaxDepth: 50, MaxNodes: 1000})
	require.EqualError(t, err, "not valid YAML: nested more than 50 levels")
}

// A document that is not YAML is a *YAMLSyntaxError that quotes nothing
// of it; an empty one is nil.
func TestDecodeYAML11Syntax(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{"", "\n", "# nothing\n", "---\n", "---\n...\n", "~\n", "null"} {
		v, err := DecodeYAML11([]byte(doc), yamlLoose)
		require.NoError(t, err, doc)
		require.Nil(t, v, doc)
	}
	const secret = "s3cr3t"
	for doc, want := range map[string]string{
		"a: 1\n---\nb: 2\n":                "not valid YAML: more than one YAML document",
		"a: 1\n--- [\n":                    "not valid YAML: more than one YAML document",
		"a: [1\n":                          "not valid YAML (line 1)",
		"a: \"" + secret + "\n":            "not valid YAML: line 2: found unexpected end of stream",
		"a: " + secret + "\n  b: x\n":      "not valid YAML: line 2: mapping values are not allowed in this context",
		"a: *" + secret + "\n":             "not valid YAML",
		"a: \xff\n":                        "not valid YAML: not UTF-8 text",
		"\t- a\n":                          "not valid YAML: found character that cannot start any token",
		"a: 1\na: [\n  - " + secret + "\n": "not valid YAML: line 2: did not find expected node content",
	} {
		_, err := DecodeYAML11([]byte(doc), yamlLoose)
		require.Error(t, err, doc)
		var se *YAMLSyntaxError
		require.True(t, errors.As(err, &se), "%q: %T %v", doc, err, err)
		require.Equal(t, want, err.Error(), doc)
		require.NotContains(t, err.Error(), secret)
	}
	require.Equal(t, ": why", (&YAMLSyntaxError{Line: 3, Reason: "why"}).Detail())
	require.Equal(t, " (line 3)", (&YAMLSyntaxError{Line: 3}).Detail())
	require.Equal(t, "", (&YAMLSyntaxError{}).Detail())
}

func TestPythonStr(t *testing.T) {
	t.Parallel()
	for v, want := range map[float64]string{1e16: "1e+16", 1e15: "1000000000000000.0", 1234567.5: "1234567.5",
		1e-5: "1e-05", 0.0001: "0.0001", 100: "100.0", 0.1: "0.1", -2.5: "-2.5", math.Copysign(0, -1): "-0.0"} {
		require.Equal(t, want, pyFloat(v))
	}
	inf, ok := yaml11Float("-.inf")
	require.True(t, ok)
	require.Equal(t, "-inf", pyFloat(inf))
	require.Equal(t, "nan", pyFloat(math.NaN()))
	for v, want := range map[any]string{nil: "None", true: "True", false: "False", json.Number("-7"): "-7", "x": "x", 2.5: "2.5"} {
		got, err := PythonStr(v)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	_, err := PythonStr([]any{})
	require.EqualError(t, err, "a list is not a scalar")
}

// ValueKind names every kind a decoder returns.
func TestValueKind(t *testing.T) {
	t.Parallel()
	for v, want := range map[any]string{nil: "null", true: "a boolean", "s": "a string", json.Number("1"): "a number",
		1.5: "a number", 3: "int"} {
		require.Equal(t, want, ValueKind(v))
	}
	require.Equal(t, "a list", ValueKind([]any{}))
	require.Equal(t, "a mapping", ValueKind(map[string]any{}))
}

// Strings are written plain only when every reader reads them back as
// the same string; numbers as YAML 1.1 reads them back.
func TestYAMLWriting(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"test_job_1", "7f23b8ae-3e06-405c-9131-f133aaa12c96", "success", "a.b", "x/y", "1.2.3", "_", "Yess", "1a", "yy"} {
		require.True(t, yamlPlain(s), s)
	}
	for _, s := range []string{"", "yes", "No", "on", "y", "n", "null", "~", "1", "1.0", "0x1F", "0o17", "1e3", "1:30", "Y", "N",
		"2001-12-14", ".inf", "-1", "=", "<<", "a b", "a:b", "#x", "é", "true", "12345", "0b1", "1_000"} {
		require.False(t, yamlPlain(s), s)
	}
	for num, want := range map[json.Number]string{"1": "1", "-0": "0", "007": "7", "12345678901234567890": "12345678901234567890",
		"1.5": "1.5", "1e16": "1.0e+16", "1E-5": "1.0e-05", "2.50": "2.5", "-0.0": "-0.0", "1e2": "100.0"} {
		n, err := yamlNumber(num)
		require.NoError(t, err)
		require.Equal(t, want, n.Value, num)
	}
	for _, num := range []json.Number{"1e400", "x", "0x10"} {
		_, err := yamlNumber(num)
		require.Error(t, err, num)
	}
	_, err := yamlValue(struct{}{})
	require.EqualError(t, err, "cannot write struct {} as YAML")
}
