package config

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// SecretMask replaces every non-empty secret in Masked and YAML output.
const SecretMask = "******"

// RedactURL hides the secret of a NATS server URL without parsing it, so
// that a URL that does not parse is redacted too. Its user info is
// everything between "scheme://" (or the start, without a scheme) and the
// last '@': the user name before the first ':' is kept and the rest
// becomes SecretMask; a user info without ':' is a token and becomes
// SecretMask whole. A string without '@' is returned unchanged.
func RedactURL(s string) string {
	prefix, rest := splitScheme(s)
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return s
	}
	if user, _, ok := strings.Cut(rest[:at], ":"); ok {
		return prefix + user + ":" + SecretMask + rest[at:]
	}
	return prefix + SecretMask + rest[at:]
}

// URLSecret returns what RedactURL hides in a server URL: the password, or
// the token, of its user info; "" when there is none.
func URLSecret(s string) string {
	_, rest := splitScheme(s)
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return ""
	}
	if _, pass, ok := strings.Cut(rest[:at], ":"); ok {
		return pass
	}
	return rest[:at]
}

var urlScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)

// splitScheme splits s into "scheme://" and the rest. What comes before
// the first "://" is a scheme only if it looks like one (so that in
// "user:pa://ss@host" it is not).
func splitScheme(s string) (string, string) {
	i := strings.Index(s, "://")
	if i < 0 || !urlScheme.MatchString(s[:i]) {
		return "", s
	}
	return s[:i+3], s[i+3:]
}

// Masked returns a deep copy of c with every non-empty secret replaced by
// SecretMask: nats.password, nats.token, nats.nkeys_seed, mqtt.password,
// the values of nats.headers, the password (or token) in server URLs, and
// every string that got text from a ${VAR} (see ExpandedKeys). A number or
// a boolean from a ${VAR} keeps its value here; YAML hides it too.
func (c *Config) Masked() *Config {
	m := maskedCopy(reflect.ValueOf(*c), "", c.hidden).Interface().(Config)
	m.expandedValues = slices.Clone(c.expandedValues)
	for _, s := range m.secretFields() {
		if *s != "" {
			*s = SecretMask
		}
	}
	for k, v := range m.NATS.Headers {
		if v != "" {
			m.NATS.Headers[k] = SecretMask
		}
	}
	for i, s := range m.NATS.Servers {
		m.NATS.Servers[i] = RedactURL(s)
	}
	return &m
}

// secretFields returns the fields of c that hold a secret whatever their
// value: nats.password, nats.token, nats.nkeys_seed and mqtt.password.
func (c *Config) secretFields() []*string {
	return []*string{&c.NATS.Password, &c.NATS.Token, &c.NATS.NkeysSeed, &c.MQTT.Password}
}

// hidden reports whether the value at key at, or a value it is part of,
// got text from a ${VAR}.
func (c *Config) hidden(at string) bool {
	for _, k := range c.ExpandedKeys {
		if within(at, k) {
			return true
		}
	}
	return false
}

// maskedCopy returns a deep copy of v, the value at key at, in which every
// non-empty string whose key hide reports is SecretMask. Keys are built as
// the ${VAR} expansion builds them; fields tagged yaml:"-" are copied, not
// masked.
func maskedCopy(v reflect.Value, at string, hide func(string) bool) reflect.Value {
	out := reflect.New(v.Type()).Elem()
	switch v.Kind() {
	case reflect.Struct:
		out.Set(v)
		maskStructFields(out, v, at, hide)
	case reflect.Pointer:
		if !v.IsNil() {
			out.Set(reflect.New(v.Type().Elem()))
			out.Elem().Set(maskedCopy(v.Elem(), at, hide))
		}
	case reflect.Slice:
		if !v.IsNil() {
			out.Set(reflect.MakeSlice(v.Type(), v.Len(), v.Len()))
			for i := range v.Len() {
				out.Index(i).Set(maskedCopy(v.Index(i), indexKey(at, i), hide))
			}
		}
	case reflect.Map:
		if !v.IsNil() {
			out.Set(reflect.MakeMapWithSize(v.Type(), v.Len()))
			for it := v.MapRange(); it.Next(); {
				key := joinKey(at, fmt.Sprint(it.Key().Interface()))
				out.SetMapIndex(it.Key(), maskedCopy(it.Value(), key, hide))
			}
		}
	case reflect.String:
		out.Set(v)
		if v.Len() > 0 && hide(at) {
			out.SetString(SecretMask)
		}
	default:
		out.Set(v)
	}
	return out
}

// maskStructFields sets every exported field of out, a copy of the struct
// v at key at, to the masked copy of the field; fields tagged yaml:"-"
// are copied, not masked.
func maskStructFields(out, v reflect.Value, at string, hide func(string) bool) {
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		name, h := yamlKey(f), hide
		if name == "-" {
			h = func(string) bool { return false }
		}
		out.Field(i).Set(maskedCopy(v.Field(i), joinKey(at, name), h))
	}
}

// YAML returns the effective configuration with secrets masked, as YAML
// (what "ansible-worker validate" prints): Masked, and every number or
// boolean that came from a ${VAR} printed as SecretMask as well.
func (c *Config) YAML() ([]byte, error) {
	var doc yaml.Node
	if err := doc.Encode(c.Masked()); err != nil {
		return nil, fmt.Errorf("encoding the configuration: %w", err)
	}
	maskNodes(&doc, "", c.hidden)
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("encoding the configuration: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding the configuration: %w", err)
	}
	return []byte(b.String()), nil
}

// maskNodes replaces every non-null scalar under n, which is at key at,
// by SecretMask where hide reports its key.
func maskNodes(n *yaml.Node, at string, hide func(string) bool) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			maskNodes(c, at, hide)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			maskNodes(c, indexKey(at, i), hide)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			maskNodes(n.Content[i+1], joinKey(at, n.Content[i].Value), hide)
		}
	case yaml.ScalarNode:
		if n.Value != "" && n.ShortTag() != "!!null" && hide(at) {
			n.SetString(SecretMask)
		}
	}
}
