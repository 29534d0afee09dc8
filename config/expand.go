package config

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

var varRef = regexp.MustCompile(`\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}|\$\{`)

// expansion is the state of the ${VAR} expansion of a file: its problems,
// and what the references gave, so that Masked, YAML and errors can hide
// it.
type expansion struct {
	*report
	env func(string) (string, bool)
	// keys are the keys whose value got text from a reference.
	keys []string
	// values are those texts and the whole values they are in.
	values []string
	// tainted are the nodes holding such a value, for aliases.
	tainted map[*yaml.Node]bool
	// origin are the texts before expansion of the scalars that had a
	// reference, for messages.
	origin map[*yaml.Node]string
}

// node replaces ${VAR} in every scalar value under n (not in keys), which
// is at key at, and reports whether a value under n got text from a
// reference. Aliases are not followed: the anchored node is expanded where
// it is defined, and an alias of a node holding such a value is recorded
// whole (a merge key "<<" records the mapping it is in).
func (x *expansion) node(n *yaml.Node, at string) bool {
	got := false
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for i, c := range n.Content {
			p := at
			if n.Kind == yaml.SequenceNode {
				p = indexKey(at, i)
			}
			got = x.node(c, p) || got
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, p := n.Content[i], at
			if k.Value != "<<" || k.ShortTag() != "!!merge" {
				p = joinKey(at, k.Value)
			}
			got = x.node(n.Content[i+1], p) || got
		}
	case yaml.AliasNode:
		if got = x.tainted[n.Alias]; got {
			x.keys = append(x.keys, at)
		}
	case yaml.ScalarNode:
		got = x.scalar(n, at)
	}
	if got {
		x.tainted[n] = true
	}
	return got
}

// scalar expands the scalar n at key at and reports whether a reference
// gave it text.
func (x *expansion) scalar(n *yaml.Node, at string) bool {
	if !strings.Contains(n.Value, "${") {
		return false
	}
	out, pieces, err := expandString(n.Value, x.env)
	if err != nil {
		x.add(n.Line, at, fmt.Errorf("%s: %w", at, err))
		// Null keeps the default, so that nothing more is said of it.
		*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
		return false
	}
	x.origin[n] = n.Value
	n.Value = out
	// A plain scalar takes the type of what it now says, so that
	// "port: ${PORT}" is an int; a quoted one stays a string.
	if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle|yaml.TaggedStyle) == 0 {
		n.Tag = ""
	}
	if len(pieces) == 0 {
		return false
	}
	x.keys = append(x.keys, at)
	x.values = append(append(x.values, out), pieces...)
	return true
}

// expandString expands ${NAME}, ${NAME:-word} and $${ in s. It also
// returns the non-empty texts the references gave.
func expandString(s string, env func(string) (string, bool)) (string, []string, error) {
	var b strings.Builder
	var pieces []string
	var err error
	last := 0
	for _, m := range varRef.FindAllStringSubmatchIndex(s, -1) {
		b.WriteString(s[last:m[0]])
		last = m[1]
		tok := s[m[0]:m[1]]
		switch {
		case tok == "$${":
			b.WriteString("${")
		case m[2] < 0: // a "${" that is not a valid reference
			if err == nil {
				err = errors.New("invalid variable reference: use ${NAME} with NAME of A-Z a-z 0-9 _, or $${ for a literal ${")
			}
		default:
			v, rerr := reference(s, m, env)
			if rerr != nil {
				if err == nil {
					err = rerr
				}
				continue
			}
			b.WriteString(v)
			if v != "" {
				pieces = append(pieces, v)
			}
		}
	}
	b.WriteString(s[last:])
	return b.String(), pieces, err
}

// reference returns the value of the reference ${NAME} or ${NAME:-word}
// that varRef found at m in s.
func reference(s string, m []int, env func(string) (string, bool)) (string, error) {
	name := s[m[2]:m[3]]
	v, ok := env(name)
	if m[4] >= 0 { // ${NAME:-word}
		if !ok || v == "" {
			v = s[m[4]+2 : m[5]]
		}
		return v, nil
	}
	if !ok {
		return "", fmt.Errorf("environment variable %s is not set", name)
	}
	return v, nil
}
