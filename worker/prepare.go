package worker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
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
// inventory must already be resolved ("" inventory: Ansible's own); each
// non-empty varsFile is passed with -e, later ones winning.
func BuildArgs(t *schemas.TaskRequest, playbook, inventory string, varsFiles ...string) []string {
	var args []string
	if inventory != "" {
		args = append(args, "-i", inventory)
	}
	for _, f := range varsFiles {
		if f != "" {
			args = append(args, "-e", "@"+f)
		}
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

// WriteExtraVars writes vars to path (mode 0600) as EncodeExtraVars gives
// them.
func WriteExtraVars(path string, vars map[string]any) error {
	b, err := EncodeExtraVars(vars)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write extra vars: %w", err)
	}
	return nil
}

// EncodeExtraVars returns vars as YAML in which every string, and every key
// of a nested mapping, is tagged !unsafe: Ansible then treats them as data
// and never evaluates a "{{ ... }}" inside them on the worker, not even when
// a playbook loops over a dictionary's keys. The top-level keys are
// variable names (see schemas.ParseTaskRequest).
func EncodeExtraVars(vars map[string]any) ([]byte, error) {
	return encodeVars(vars, 0)
}

// EncodeExtraVarsLine is EncodeExtraVars on one line (YAML flow style), for
// an -e argument.
func EncodeExtraVarsLine(vars map[string]any) ([]byte, error) {
	b, err := encodeVars(vars, yaml.FlowStyle)
	return bytes.TrimSpace(b), err
}

func encodeVars(vars map[string]any, style yaml.Style) ([]byte, error) {
	top := unsafeNode(vars, style)
	for i := 0; i < len(top.Content); i += 2 {
		top.Content[i].Tag = "!!str" // a variable name, never templated
	}
	b, err := yaml.Marshal(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{top}})
	if err != nil {
		return nil, fmt.Errorf("encode extra vars: %w", err)
	}
	return b, nil
}

// unsafeNode is v as a YAML node, strings and keys tagged !unsafe;
// mappings and sequences in style.
func unsafeNode(v any, style yaml.Style) *yaml.Node {
	switch x := v.(type) {
	case map[string]any:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: style}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			n.Content = append(n.Content,
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!unsafe", Value: k, Style: yaml.DoubleQuotedStyle},
				unsafeNode(x[k], style))
		}
		return n
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: style}
		for _, e := range x {
			n.Content = append(n.Content, unsafeNode(e, style))
		}
		return n
	}
	return scalarNode(v)
}

// scalarNode is a scalar as a YAML node: strings tagged !unsafe.
func scalarNode(v any) *yaml.Node {
	switch x := v.(type) {
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!unsafe", Value: x, Style: yaml.DoubleQuotedStyle}
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(x)}
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
		// A float stays one, even 1000.0 (tagged: YAML 1.1 would not read
		// every JSON float form as one).
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: formatFloat(x), Style: yaml.TaggedStyle}
	default:
		b, _ := json.Marshal(x)
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!unsafe", Value: string(b), Style: yaml.DoubleQuotedStyle}
	}
}

// formatFloat writes f as YAML 1.1 reads it back: JSON's form, and .nan,
// .inf, -.inf, which JSON has not but a YAML private data directory may.
func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return ".nan"
	case math.IsInf(f, 1):
		return ".inf"
	case math.IsInf(f, -1):
		return "-.inf"
	}
	b, _ := json.Marshal(f)
	return string(b)
}

// Resolved is a playbook or inventory path that was checked, as Ansible
// gets it: symlinks resolved, relative to the real playbook directory.
type Resolved struct {
	// Dir is the playbook directory with its symlinks resolved: the
	// working directory of the run.
	Dir string
	// Playbook is the resolved playbook, relative to Dir (a job's first).
	Playbook string
	// Playbooks are a named job's resolved playbooks, run in order; nil
	// for a task's one Playbook.
	Playbooks []string
	// Inventory is the resolved inventory relative to Dir, or the inline
	// host list.
	Inventory string
}

// resolve checks the task's playbook and inventory and returns them as
// ansible-playbook will get them: the resolved paths that were checked, so a
// symlink swapped after the check changes nothing.
func (w *Worker) resolve(req *schemas.TaskRequest) (Resolved, error) {
	var r Resolved
	dir, playbook, err := resolveReal(w.cfg.PlaybookDir, req.Playbook, "playbook")
	if err != nil {
		return r, err
	}
	if !Allowed(w.cfg.AllowPlaybooks, filepath.Clean(req.Playbook)) {
		return r, fmt.Errorf("playbook %q is not in worker.allow_playbooks", req.Playbook)
	}
	r.Dir, r.Playbook = dir, playbook
	if req.InlineInventory() {
		r.Inventory = req.Inventory
		return r, nil
	}
	_, inv, err := resolveReal(w.cfg.PlaybookDir, req.Inventory, "inventory")
	if err != nil {
		return r, err
	}
	if inv == "." {
		// Every executable file in it would be an inventory script.
		return r, fmt.Errorf("inventory %q is the playbook directory itself: name an inventory file or directory in it", req.Inventory)
	}
	r.Inventory = inv
	return r, nil
}

// resolveReal checks rel like ResolveInside and returns the real base
// directory and rel's real path relative to it. Hidden names (.git and the
// like) are refused: they hold no playbook or inventory, and Ansible would
// print what it could not parse of them.
func resolveReal(base, rel, what string) (realBase, real string, err error) {
	for _, part := range strings.Split(filepath.Clean(rel), string(filepath.Separator)) {
		if strings.HasPrefix(part, ".") && part != "." && part != ".." {
			return "", "", fmt.Errorf("%s %q names a hidden file or directory (%s)", what, rel, part)
		}
	}
	if _, err := ResolveInside(base, rel, what); err != nil {
		return "", "", err
	}
	if realBase, err = filepath.EvalSymlinks(base); err != nil {
		return "", "", fmt.Errorf("playbook directory: %w", err)
	}
	// Absolute: it is the run's cwd, reported in the runner status.
	if realBase, err = filepath.Abs(realBase); err != nil {
		return "", "", fmt.Errorf("playbook directory: %w", err)
	}
	abs, err := filepath.EvalSymlinks(filepath.Join(realBase, filepath.Clean(rel)))
	if err != nil {
		return "", "", fmt.Errorf("%s %q: %w", what, rel, err)
	}
	if real, err = filepath.Rel(realBase, abs); err != nil || real == ".." || strings.HasPrefix(real, ".."+string(filepath.Separator)) {
		return "", "", fmt.Errorf("%s %q leads outside the playbook directory", what, rel)
	}
	return realBase, real, nil
}
