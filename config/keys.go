package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// checkKeys reports every mapping key under doc, the top of file, that
// Config does not have, with its line in the original file.
func checkKeys(file string, doc *yaml.Node) error {
	k := &keyChecker{file: file, seen: map[keyVisit]bool{}}
	k.check(doc, reflect.TypeFor[Config](), "")
	return errors.Join(k.problems...)
}

// keyChecker walks a YAML document along the type it decodes into.
type keyChecker struct {
	file     string
	seen     map[keyVisit]bool
	problems []error
}

// keyVisit is a node checked against a type: aliases can lead to the same
// pair again.
type keyVisit struct {
	n *yaml.Node
	t reflect.Type
}

var yamlUnmarshaler = reflect.TypeFor[yaml.Unmarshaler]()

// check reports every mapping key under n, which is at key at, that type t
// does not have.
func (k *keyChecker) check(n *yaml.Node, t reflect.Type, at string) {
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
	if n.Kind == yaml.AliasNode {
		k.check(n.Alias, t, at)
		return
	}
	if reflect.PointerTo(t).Implements(yamlUnmarshaler) {
		return
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		k.checkStruct(n, t, at)
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k.check(n.Content[i+1], t.Elem(), joinKey(at, n.Content[i].Value))
		}
	case (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && n.Kind == yaml.SequenceNode:
		for i, c := range n.Content {
			k.check(c, t.Elem(), indexKey(at, i))
		}
	}
}

// checkStruct checks the mapping n, at key at, against struct type t,
// following merge keys ("<<").
func (k *keyChecker) checkStruct(n *yaml.Node, t reflect.Type, at string) {
	fields := yamlFields(t)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, v := n.Content[i], n.Content[i+1]
		if key.Kind == yaml.ScalarNode && key.Value == "<<" && key.ShortTag() == "!!merge" {
			if v.Kind == yaml.SequenceNode {
				for _, c := range v.Content {
					k.check(c, t, at)
				}
			} else {
				k.check(v, t, at)
			}
			continue
		}
		ft, ok := fields[key.Value]
		if !ok {
			k.problems = append(k.problems, fmt.Errorf("%s:%d: unknown key %q", k.file, key.Line, joinKey(at, key.Value)))
			continue
		}
		k.check(v, ft, joinKey(at, key.Value))
	}
}

// yamlFields maps the YAML keys of struct type t to their field types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		if name := yamlKey(f); f.IsExported() && name != "-" {
			out[name] = f.Type
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

// indexKey returns the key of item i of the sequence at key at
// ("nats.servers[0]").
func indexKey(at string, i int) string {
	return fmt.Sprintf("%s[%d]", at, i)
}
