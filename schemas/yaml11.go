package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// YAML11Options bounds and shapes what DecodeYAML11 builds. A bound of 0
// is no bound: callers reading untrusted documents set all three.
type YAML11Options struct {
	// MaxDepth bounds the nesting of lists and mappings, the top value
	// being at depth 0; following an alias counts as one level, so a
	// cycle of aliases (an anchor used in its own value) stops here too.
	MaxDepth int
	// MaxNodes bounds the nodes converted, the target of an alias counted
	// each time it is used: aliases cannot expand a small document into a
	// huge value (the "billion laughs").
	MaxNodes int
	// MaxBytes bounds the total length of the scalars converted, counted
	// the same way: an alias to a long string cannot be repeated at will.
	MaxBytes int
	// JSON makes the result JSON data: mapping keys must be strings,
	// floats become json.Number as Python writes them (.inf and .nan,
	// which JSON cannot hold, are refused), and a list or mapping tagged
	// otherwise than !!seq or !!map (a !!set, an !!omap: Python types
	// JSON does not have) is refused. Without it a key is Python's str()
	// of its value, a float is a float64 and tags of lists and mappings
	// are ignored, as for ansible-runner's env files.
	JSON bool
}

// DecodeYAML11 reads data, one YAML document, as Python's yaml.safe_load
// (PyYAML, YAML 1.1) reads it, into nil, bool, string, json.Number
// (integers, exact), float64 (floats; json.Number with JSON), []any and
// map[string]any. Plain scalars follow YAML 1.1: yes/no/on/off are
// booleans, 0755 is octal, 0x1F and 0b101 are integers, 1:30 is 90, 1e3
// (no dot) is a string, 0o17 is a string as in PyYAML. Merge keys (<<)
// merge. Timestamps stay the text written (JSON has no dates). Tags other
// than !!str, !!int, !!float, !!bool, !!null, !!timestamp, !unsafe and
// !vault are refused. An empty document is nil; more than one is an error.
// Errors never quote the document, which may hold secrets; a document
// that does not parse is a *YAMLSyntaxError.
func DecodeYAML11(data []byte, o YAML11Options) (any, error) {
	doc, err := parseYAMLDocument(data)
	if err != nil || doc == nil {
		return nil, err
	}
	return (&yaml11{o: o}).value(doc, 0)
}

// YAMLSyntaxError is a document that is not YAML (or not one document).
type YAMLSyntaxError struct {
	// Line is where the parser stopped, 0 when unknown.
	Line int
	// Reason is the parser's message when it quotes nothing of the
	// document, else "".
	Reason string
}

// Error says the document is not valid YAML, and where or why.
func (e *YAMLSyntaxError) Error() string { return "not valid YAML" + e.Detail() }

// Detail is what follows "not valid YAML" in Error: ": reason", " (line
// N)" or nothing, for callers that word the start themselves.
func (e *YAMLSyntaxError) Detail() string {
	switch {
	case e.Reason != "":
		return ": " + e.Reason
	case e.Line > 0:
		return fmt.Sprintf(" (line %d)", e.Line)
	}
	return ""
}

// parseYAMLDocument parses exactly one document; nil when there is none.
func parseYAMLDocument(data []byte) (*yaml.Node, error) {
	if !utf8.Valid(data) {
		// The parser would also take UTF-16; nothing here sends it.
		return nil, &YAMLSyntaxError{Reason: "not UTF-8 text"}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var n yaml.Node
	if err := dec.Decode(&n); errors.Is(err, io.EOF) {
		return nil, nil
	} else if err != nil {
		return nil, yamlSyntax(err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, &YAMLSyntaxError{Reason: "more than one YAML document"}
	}
	return &n, nil
}

var yamlLineRE = lazyRegexp(`line ([0-9]+)`)

// yamlSyntax keeps the parser's message only when it quotes nothing of
// the document, else only its line.
func yamlSyntax(err error) *YAMLSyntaxError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if !strings.ContainsAny(msg, "'\"`") {
		return &YAMLSyntaxError{Reason: msg}
	}
	e := &YAMLSyntaxError{}
	if m := yamlLineRE().FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
	}
	return e
}

// ValueKind names the kind of a decoded value (YAML or JSON) for error
// messages: "null", "a boolean", "a string", "a number", "a list", "a
// mapping".
func ValueKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}

// yaml11 converts the nodes of one document; its counts span every value
// converted, so the bounds hold for the document as a whole.
type yaml11 struct {
	o            YAML11Options
	nodes, bytes int
}

func (c *yaml11) value(n *yaml.Node, depth int) (any, error) {
	if c.nodes++; c.o.MaxNodes > 0 && c.nodes > c.o.MaxNodes {
		return nil, errors.New("not valid YAML: too many nodes (aliases expanding?)")
	}
	if c.o.MaxDepth > 0 && depth > c.o.MaxDepth {
		return nil, fmt.Errorf("not valid YAML: nested more than %d levels", c.o.MaxDepth)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return c.value(n.Content[0], depth)
	case yaml.AliasNode:
		return c.value(n.Alias, depth+1)
	case yaml.SequenceNode:
		if c.o.JSON && n.ShortTag() != "!!seq" {
			return nil, fmt.Errorf("not supported (line %d): a list tagged %s", n.Line, n.ShortTag())
		}
		return c.sequence(n, depth)
	case yaml.MappingNode:
		if c.o.JSON && n.ShortTag() != "!!map" {
			return nil, fmt.Errorf("not supported (line %d): a mapping tagged %s", n.Line, n.ShortTag())
		}
		return c.mapping(n, depth)
	case yaml.ScalarNode:
		return c.scalar(n)
	}
	return nil, fmt.Errorf("not valid YAML (line %d)", n.Line)
}

// scalar counts a scalar's text against MaxBytes and resolves it.
func (c *yaml11) scalar(n *yaml.Node) (any, error) {
	if c.bytes += len(n.Value); c.o.MaxBytes > 0 && c.bytes > c.o.MaxBytes {
		return nil, fmt.Errorf("not valid YAML: the values hold more than %d bytes of text (aliases expanding?)", c.o.MaxBytes)
	}
	v, err := yaml11Scalar(n)
	if f, ok := v.(float64); ok && err == nil && c.o.JSON {
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("not supported (line %d): %s, which JSON cannot hold", n.Line, pyFloat(f))
		}
		return json.Number(pyFloat(f)), nil
	}
	return v, err
}

func (c *yaml11) sequence(n *yaml.Node, depth int) (any, error) {
	out := make([]any, 0, len(n.Content))
	for _, e := range n.Content {
		v, err := c.value(e, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// mapping builds a mapping; merge keys (<<) add the keys of the mappings
// they name that the mapping does not set itself, the first named winning.
// A key set twice keeps its last value, as in PyYAML.
func (c *yaml11) mapping(n *yaml.Node, depth int) (any, error) {
	own := map[string]any{}
	var merged []map[string]any
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" && k.Style == 0 {
			m, err := c.merge(v, depth)
			if err != nil {
				return nil, err
			}
			merged = append(merged, m...)
			continue
		}
		key, err := c.key(k, depth)
		if err != nil {
			return nil, err
		}
		if own[key], err = c.value(v, depth+1); err != nil {
			return nil, err
		}
	}
	for i := len(merged) - 1; i >= 0; i-- {
		for k, v := range merged[i] {
			if _, set := own[k]; !set {
				own[k] = v
			}
		}
	}
	return own, nil
}

// merge returns the mappings a merge key names: one, or a list of them.
func (c *yaml11) merge(n *yaml.Node, depth int) ([]map[string]any, error) {
	v, err := c.value(n, depth+1)
	if err != nil {
		return nil, err
	}
	list, ok := v.([]any)
	if !ok {
		list = []any{v}
	}
	out := make([]map[string]any, 0, len(list))
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("not valid YAML (line %d): a merge key (<<) needs mappings", n.Line)
		}
		out = append(out, m)
	}
	return out, nil
}

// key returns a mapping key: with JSON only a string, else Python's str()
// of a scalar.
func (c *yaml11) key(n *yaml.Node, depth int) (string, error) {
	v, err := c.value(n, depth+1)
	if err != nil {
		return "", err
	}
	if s, ok := v.(string); ok {
		return s, nil
	}
	if c.o.JSON {
		return "", fmt.Errorf("not supported (line %d): a mapping key that is %s; keys must be strings (quote it)",
			n.Line, ValueKind(v))
	}
	s, err := PythonStr(v)
	if err != nil {
		return "", fmt.Errorf("not supported (line %d): a mapping key that is %s", n.Line, ValueKind(v))
	}
	return s, nil
}

// yaml11Scalar resolves a scalar: quoted ones are strings, tagged ones
// follow their tag, plain ones PyYAML's implicit YAML 1.1 rules.
func yaml11Scalar(n *yaml.Node) (any, error) {
	if n.Style&yaml.TaggedStyle != 0 {
		return yaml11Tagged(n)
	}
	if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return n.Value, nil
	}
	return yaml11Resolve(n.Value), nil
}

func yaml11Tagged(n *yaml.Node) (any, error) {
	switch n.ShortTag() {
	case "!!str", "!unsafe", "!vault", "!!timestamp":
		return n.Value, nil
	case "!!null":
		return nil, nil
	case "!!bool":
		if v, ok := yaml11Bool(n.Value); ok {
			return v, nil
		}
	case "!!int":
		if v, ok := yaml11Int(n.Value); ok {
			return v, nil
		}
	case "!!float":
		if v, ok := yaml11Float(n.Value); ok {
			return v, nil
		}
	default:
		return nil, fmt.Errorf("not supported (line %d): a YAML tag other than !!str, !!int, !!float, "+
			"!!bool, !!null, !!timestamp, !unsafe and !vault", n.Line)
	}
	return nil, fmt.Errorf("not valid YAML (line %d): the value does not fit its tag %s", n.Line, n.ShortTag())
}

// PyYAML's implicit resolvers (YAML 1.1).
var (
	yaml11NullRE  = lazyRegexp(`^(?:~|null|Null|NULL|)$`)
	yaml11BoolRE  = lazyRegexp(`^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$`)
	yaml11IntRE   = lazyRegexp(`^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$`)
	yaml11FloatRE = lazyRegexp(`^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$`)
	// yaml11TimestampRE is PyYAML's timestamp: safe_load makes a date of
	// it, which DecodeYAML11 leaves as text.
	yaml11TimestampRE = lazyRegexp(`^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$`)
)

// yaml11Resolve resolves a plain scalar as PyYAML does. Timestamps stay
// strings.
func yaml11Resolve(s string) any {
	switch {
	case yaml11NullRE().MatchString(s):
		return nil
	case yaml11BoolRE().MatchString(s):
		v, _ := yaml11Bool(s)
		return v
	case yaml11IntRE().MatchString(s):
		if v, ok := yaml11Int(s); ok {
			return v
		}
	case yaml11FloatRE().MatchString(s):
		if v, ok := yaml11Float(s); ok {
			return v
		}
	}
	return s
}

// yamlTimestamp reports a scalar that safe_load reads as a date or time,
// a string here.
func yamlTimestamp(n *yaml.Node) bool {
	if n.Style&yaml.TaggedStyle != 0 {
		return n.ShortTag() == "!!timestamp"
	}
	return n.Style == 0 && yaml11TimestampRE().MatchString(n.Value)
}

func yaml11Bool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "yes", "true", "on":
		return true, true
	case "no", "false", "off":
		return false, true
	}
	return false, false
}

// yaml11Int converts a YAML 1.1 integer: 0b binary, 0x hex, leading 0
// octal, a:b:c base 60, underscores ignored.
func yaml11Int(s string) (json.Number, bool) {
	s = strings.ReplaceAll(s, "_", "")
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	var i *big.Int
	ok := false
	switch {
	case strings.Contains(s, ":"):
		i, ok = yaml11Base60(s)
	case strings.HasPrefix(s, "0b"):
		i, ok = new(big.Int).SetString(s[2:], 2)
	case strings.HasPrefix(s, "0x"):
		i, ok = new(big.Int).SetString(s[2:], 16)
	case len(s) > 1 && s[0] == '0':
		i, ok = new(big.Int).SetString(s[1:], 8)
	default:
		i, ok = new(big.Int).SetString(s, 10)
	}
	if !ok {
		return "", false
	}
	if neg {
		i.Neg(i)
	}
	return json.Number(i.String()), true
}

func yaml11Base60(s string) (*big.Int, bool) {
	out := new(big.Int)
	for _, part := range strings.Split(s, ":") {
		d, err := strconv.Atoi(part)
		if err != nil {
			return nil, false
		}
		out.Mul(out, big.NewInt(60)).Add(out, big.NewInt(int64(d)))
	}
	return out, true
}

// yaml11Float converts a YAML 1.1 float, including .inf, .nan and base 60.
func yaml11Float(s string) (float64, bool) {
	s = strings.ToLower(strings.ReplaceAll(s, "_", ""))
	sign := 1.0
	if s != "" && (s[0] == '-' || s[0] == '+') {
		if s[0] == '-' {
			sign = -1
		}
		s = s[1:]
	}
	switch {
	case s == ".inf":
		return sign * math.Inf(1), true
	case s == ".nan":
		return math.NaN(), true
	case strings.Contains(s, ":"):
		parts := strings.Split(s, ":")
		v := 0.0
		for i, p := range parts {
			d, err := strconv.ParseFloat(p, 64)
			if err != nil || (i < len(parts)-1 && strings.Contains(p, ".")) {
				return 0, false
			}
			v = v*60 + d
		}
		return sign * v, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false
	}
	return sign * f, true
}

// PythonStr is Python's str() of a scalar (nil, bool, string, json.Number,
// float64): what ansible-runner makes of an environment variable's value,
// and of a mapping key that is not a string.
func PythonStr(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "None", nil
	case bool:
		if x {
			return "True", nil
		}
		return "False", nil
	case string:
		return x, nil
	case json.Number:
		return string(x), nil
	case float64:
		return pyFloat(x), nil
	}
	return "", fmt.Errorf("%s is not a scalar", ValueKind(v))
}

// pyFloat is Python's repr() of a float.
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64)
	exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
	if f != 0 && (exp+1 > 16 || exp+1 <= -4) {
		return e
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// The writing side: values written so that PyYAML's safe_load, YAML 1.2
// readers and DecodeYAML11 all read them back unchanged.

// yamlPlainRE is what may be written plain, if no reader takes it for
// another type: no character YAML gives a meaning to.
var yamlPlainRE = lazyRegexp(`^[A-Za-z0-9_][A-Za-z0-9_./-]*$`)

// yamlOldBoolRE are the booleans of the YAML 1.1 specification that PyYAML
// leaves strings; other YAML 1.1 readers do not.
var yamlOldBoolRE = lazyRegexp(`^[yYnN]$`)

// yamlString writes s plain when that is unambiguous (as seed 003 shows
// job names and request ids), else double-quoted, which escapes what needs
// it.
func yamlString(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	if !yamlPlain(s) {
		n.Style = yaml.DoubleQuotedStyle
	}
	return n
}

// yamlPlain reports whether s, written plain, is a string to YAML 1.1
// (yes, 0x1F, 1:30 and 2001-12-14 are not) and to YAML 1.2 (0o17 and 1e3
// are not).
func yamlPlain(s string) bool {
	if !yamlPlainRE().MatchString(s) || yaml11TimestampRE().MatchString(s) || yamlOldBoolRE().MatchString(s) {
		return false
	}
	if _, ok := yaml11Resolve(s).(string); !ok {
		return false
	}
	return (&yaml.Node{Kind: yaml.ScalarNode, Value: s}).ShortTag() == "!!str"
}

// yamlBlock writes s as a literal block (|-, | or |+ as its trailing line
// breaks need) when every reader reads such a block back exactly: only
// characters both PyYAML and yaml.v3 print, and no line break but \n
// (PyYAML turns \r and NEL into \n in a block), and no tab first (where
// the block's indentation is still being read, yaml.v3 refuses a tab).
// Otherwise, and where the emitter finds a block cannot hold s (an empty
// string, trailing spaces), it is double-quoted.
func yamlBlock(s string) *yaml.Node {
	if strings.HasPrefix(s, "\t") {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Style: yaml.DoubleQuotedStyle}
	}
	for _, r := range s {
		printable := r == '\n' || r == '\t' || (r >= 0x20 && r <= 0x7e) || (r >= 0xa0 && r <= 0xd7ff) ||
			(r >= 0xe000 && r <= 0xfffd && r != 0xfeff)
		if !printable || r == 0x2028 || r == 0x2029 {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Style: yaml.DoubleQuotedStyle}
		}
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Style: yaml.LiteralStyle}
}

// yamlValue writes a JSON value as decoded with UseNumber; mapping keys
// are sorted, so the output is stable.
func yamlValue(v any) (*yaml.Node, error) {
	switch x := v.(type) {
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(x)}, nil
	case string:
		return yamlString(x), nil
	case json.Number:
		return yamlNumber(x)
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, e := range x {
			en, err := yamlValue(e)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, en)
		}
		return n, nil
	case map[string]any:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, k := range sortedKeys(x) {
			en, err := yamlValue(x[k])
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, yamlString(k), en)
		}
		return n, nil
	}
	return nil, fmt.Errorf("cannot write %T as YAML", v)
}

// yamlNumber writes a JSON number so that YAML 1.1 reads back the same
// value: an integer in decimal, any other number as Python writes a float
// with a dot before its exponent (1.0e+16: without the dot, YAML 1.1 reads
// a string; PyYAML writes floats so too).
func yamlNumber(num json.Number) (*yaml.Node, error) {
	s := string(num)
	if !strings.ContainsAny(s, ".eE") {
		i, ok := new(big.Int).SetString(s, 10)
		if !ok {
			return nil, fmt.Errorf("%q is not a number", s)
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: i.String()}, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("the number %s does not fit a float", truncate(s))
	}
	r := pyFloat(f)
	if i := strings.IndexByte(r, 'e'); i >= 0 && !strings.Contains(r, ".") {
		r = r[:i] + ".0" + r[i:]
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: r}, nil
}

// encodeYAML writes one document as seed 003's messages are written:
// "---" first, indented by two spaces, a list's "- " under its key.
func encodeYAML(n *yaml.Node) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("---\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	enc.CompactSeqIndent()
	if err := enc.Encode(n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// sortedKeys returns the keys of m in order.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
