package config

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// checkDocument reports every mapping key under doc, the top of file, that
// Config does not have, and every value that does not fit its key's type,
// with its line in the original file. A value that does not fit is made
// null (or an empty mapping), so that decoding keeps the default and
// reports nothing more. origin holds the text before ${VAR} expansion of
// the scalars that had a reference.
func checkDocument(r *report, doc *yaml.Node, origin map[*yaml.Node]string) {
	k := &keyChecker{report: r, origin: origin, seen: map[keyVisit]bool{}}
	k.check(doc, reflect.TypeFor[Config](), "", "")
}

// keyChecker walks a YAML document along the type it decodes into.
type keyChecker struct {
	*report
	origin map[*yaml.Node]string
	seen   map[keyVisit]bool
}

// keyVisit is a node checked against a type: aliases can lead to the same
// pair again.
type keyVisit struct {
	n *yaml.Node
	t reflect.Type
}

var yamlUnmarshaler = reflect.TypeFor[yaml.Unmarshaler]()

// check reports every mapping key under n, which is at key at, that type t
// does not have, and every value that does not fit t; unit is the unit tag
// of the field ("seconds").
func (k *keyChecker) check(n *yaml.Node, t reflect.Type, at, unit string) {
	if n == nil {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if k.seen[keyVisit{n, t}] {
		return
	}
	k.seen[keyVisit{n, t}] = true
	switch {
	case n.Kind == yaml.AliasNode:
		k.check(n.Alias, t, at, unit)
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null":
		// null keeps the default
	case reflect.PointerTo(t).Implements(yamlUnmarshaler) && (t.Kind() != reflect.Slice || n.Kind != yaml.SequenceNode):
		k.checkDecode(n, t, at, unit)
	case (t.Kind() == reflect.Struct || t.Kind() == reflect.Map) && n.Kind == yaml.MappingNode:
		k.checkMapping(n, t, at)
	case (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && n.Kind == yaml.SequenceNode:
		for i, c := range n.Content {
			k.line(indexKey(at, i), c.Line)
			k.check(c, t.Elem(), indexKey(at, i), unit)
		}
	case t.Kind() == reflect.Struct || t.Kind() == reflect.Map || t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		k.typeProblem(n, t, at, unit)
	default:
		k.checkDecode(n, t, at, unit)
	}
}

// checkDecode reports n, at key at, when the YAML library cannot decode it
// into a t.
func (k *keyChecker) checkDecode(n *yaml.Node, t reflect.Type, at, unit string) {
	if n.Kind != yaml.ScalarNode && !reflect.PointerTo(t).Implements(yamlUnmarshaler) {
		k.typeProblem(n, t, at, unit)
		return
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil || fraction(n, t) {
		k.typeProblem(n, t, at, unit)
	}
}

// fraction reports whether n is a number with a fraction given for the
// integer type t (the YAML library would drop the fraction).
func fraction(n *yaml.Node, t reflect.Type) bool {
	if n.ShortTag() != "!!float" || !isInt(t) {
		return false
	}
	f, err := strconv.ParseFloat(n.Value, 64)
	return err == nil && f != math.Trunc(f)
}

// isInt reports whether t is an integer type.
func isInt(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

// checkMapping checks the mapping n, at key at, against the struct or map
// type t, following merge keys ("<<").
func (k *keyChecker) checkMapping(n *yaml.Node, t reflect.Type, at string) {
	var fields map[string]reflect.StructField
	if t.Kind() == reflect.Struct {
		fields = yamlFields(t)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, v := n.Content[i], n.Content[i+1]
		if key.Kind == yaml.ScalarNode && key.Value == "<<" && key.ShortTag() == "!!merge" {
			if v.Kind == yaml.SequenceNode {
				for _, c := range v.Content {
					k.check(c, t, at, "")
				}
			} else {
				k.check(v, t, at, "")
			}
			continue
		}
		p := joinKey(at, key.Value)
		k.line(p, key.Line)
		if fields == nil {
			k.check(v, t.Elem(), p, "")
			continue
		}
		f, ok := fields[key.Value]
		if !ok {
			k.add(key.Line, p, fmt.Errorf("unknown key %q", p))
			continue
		}
		k.check(v, f.Type, p, f.Tag.Get("unit"))
	}
}

// typeProblem reports that n, at key at, is not a t, and makes it null (an
// empty mapping for a mapping type) so that decoding keeps the default.
func (k *keyChecker) typeProblem(n *yaml.Node, t reflect.Type, at, unit string) {
	want := expected(t, unit, n)
	if n.Kind == yaml.ScalarNode && n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0 && t.Kind() != reflect.String {
		want += " (the quotes make it a string)"
	}
	if orig, ok := k.origin[n]; ok && n.Kind == yaml.ScalarNode {
		k.add(n.Line, at, fmt.Errorf("%s: %s gives %s: expected %s", at, showOrigin(orig), k.show(n, at), want))
	} else {
		k.add(n.Line, at, fmt.Errorf("%s: expected %s, got %s", at, want, k.show(n, at)))
	}
	line, col := n.Line, n.Column
	if t.Kind() == reflect.Struct || t.Kind() == reflect.Map {
		*n = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: line, Column: col}
	} else {
		*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: line, Column: col}
	}
}

// show describes the value n at key at for a message: its text quoted,
// SecretMask for a secret key, or what kind of value it is.
func (k *keyChecker) show(n *yaml.Node, at string) string {
	switch {
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case secretKey(at):
		return SecretMask
	}
	return strconv.Quote(n.Value)
}

// showOrigin is the text of a value before ${VAR} expansion: bare when it
// is one reference, else quoted.
func showOrigin(s string) string {
	if m := varRef.FindStringIndex(s); m != nil && m[0] == 0 && m[1] == len(s) {
		return s
	}
	return strconv.Quote(s)
}

// secretKey reports whether the key at holds a secret whatever its value
// (see secretFields and nats.headers).
func secretKey(at string) bool {
	switch at {
	case "nats.password", "nats.token", "nats.nkeys_seed", "mqtt.password":
		return true
	}
	return strings.HasPrefix(at, "nats.headers.")
}

// expected says in words what a value of type t, with the unit tag unit,
// must be; n is the value given, so that 1.5 for an integer asks for a
// whole number.
func expected(t reflect.Type, unit string, n *yaml.Node) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeFor[StringList]() {
		return "a list or a comma-separated string"
	}
	number := "a number"
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!float" {
			number = "a whole number"
		} else if unit == "" {
			return "an integer"
		}
	case reflect.Float32, reflect.Float64:
	case reflect.String:
		return "a string"
	case reflect.Struct, reflect.Map:
		return "a mapping of keys to values"
	case reflect.Slice, reflect.Array:
		return "a list"
	default:
		return t.String()
	}
	if unit != "" {
		return number + " of " + unit
	}
	return number
}

// yamlFields maps the YAML keys of struct type t to their fields.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for f := range t.Fields() {
		if name := yamlKey(f); f.IsExported() && name != "-" {
			out[name] = f
		}
	}
	return out
}

// yamlKey returns the YAML key of struct field f: the name in its yaml tag,
// else its name in lower case; "-" means the field is not a key.
func yamlKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}

// joinKey returns the key of k inside the mapping at key at ("nats" and
// "token" give "nats.token").
func joinKey(at, k string) string {
	if at == "" {
		return k
	}
	return at + "." + k
}

// within reports whether key at is k or a key inside the value at k
// ("nats.servers[0]" is within "nats.servers", "" holds every key).
func within(at, k string) bool {
	return k == "" || at == k || strings.HasPrefix(at, k) && (at[len(k)] == '.' || at[len(k)] == '[')
}

// indexKey returns the key of item i of the sequence at key at
// ("nats.servers[0]").
func indexKey(at string, i int) string {
	return fmt.Sprintf("%s[%d]", at, i)
}
