package worker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// ErrNotFound marks a playbook or inventory that does not exist.
var ErrNotFound = errors.New("not found")

// ResolveInside checks that rel names something inside base, symlinks
// followed, and returns the cleaned relative path. Absolute paths, ".."
// escapes and symlinks that lead out of base are refused.
func ResolveInside(base, rel, what string) (string, error) {
	if rel == "" {
		return "", fmt.Errorf("%s is empty", what)
	}
	if filepath.IsAbs(rel) {
		return "", fmt.Errorf("%s %q must be a path relative to the playbook directory", what, rel)
	}
	clean := filepath.Clean(rel)
	if clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%s %q leads outside the playbook directory", what, rel)
	}
	realBase, err := filepath.EvalSymlinks(base)
	if err != nil {
		return "", fmt.Errorf("playbook directory: %w", err)
	}
	real, err := filepath.EvalSymlinks(filepath.Join(realBase, clean))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%s %q: %w in the playbook directory", what, rel, ErrNotFound)
		}
		return "", fmt.Errorf("%s %q: %w", what, rel, err)
	}
	if r, err := filepath.Rel(realBase, real); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%s %q leads outside the playbook directory", what, rel)
	}
	return clean, nil
}

// Allowed reports whether playbook matches one of the glob patterns; an empty
// list allows everything.
func Allowed(patterns []string, playbook string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := filepath.Match(p, playbook); ok {
			return true
		}
	}
	return false
}

// BuildArgs returns ansible-playbook's arguments for a task. playbook and
// inventory must already be resolved; varsFile is "" when there are no extra
// vars.
func BuildArgs(t *schemas.TaskRequest, playbook, inventory, varsFile string) []string {
	args := []string{"-i", inventory}
	if varsFile != "" {
		args = append(args, "-e", "@"+varsFile)
	}
	if t.Limit != "" {
		args = append(args, "--limit", t.Limit)
	}
	if len(t.Tags) > 0 {
		args = append(args, "--tags", strings.Join(t.Tags, ","))
	}
	if len(t.SkipTags) > 0 {
		args = append(args, "--skip-tags", strings.Join(t.SkipTags, ","))
	}
	if t.Verbosity > 0 {
		args = append(args, "-"+strings.Repeat("v", t.Verbosity))
	}
	if t.CheckMode {
		args = append(args, "--check")
	}
	if t.DiffMode {
		args = append(args, "--diff")
	}
	if t.Forks > 0 && t.Forks != schemas.DefaultForks {
		args = append(args, "--forks", itoa(t.Forks))
	}
	return append(args, playbook)
}

// WriteExtraVars writes vars to path (mode 0600) as YAML in which every
// string is tagged !unsafe: Ansible then treats the values as data and never
// evaluates a "{{ ... }}" inside them on the worker.
func WriteExtraVars(path string, vars map[string]any) error {
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{unsafeNode(vars)}}
	b, err := yaml.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode extra vars: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write extra vars: %w", err)
	}
	return nil
}

func unsafeNode(v any) *yaml.Node {
	switch x := v.(type) {
	case map[string]any:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			n.Content = append(n.Content,
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k, Style: yaml.DoubleQuotedStyle},
				unsafeNode(x[k]))
		}
		return n
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, e := range x {
			n.Content = append(n.Content, unsafeNode(e))
		}
		return n
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!unsafe", Value: x, Style: yaml.DoubleQuotedStyle}
	case bool:
		if x {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"}
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "false"}
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
	case json.Number:
		s := x.String()
		if strings.ContainsAny(s, ".eE") {
			// Tagged explicitly: Ansible's YAML 1.1 reads a plain 1e3 or
			// 1.5e10 as a string.
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: s, Style: yaml.TaggedStyle}
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: s}
	case float64:
		return unsafeNode(json.Number(formatFloat(x)))
	default:
		b, _ := json.Marshal(x)
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!unsafe", Value: string(b), Style: yaml.DoubleQuotedStyle}
	}
}

func formatFloat(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}
