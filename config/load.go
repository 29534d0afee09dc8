package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DefaultConfigFile is the file LoadConfig reads when no path is given and
// the file exists in the working directory.
const DefaultConfigFile = "config.yaml"

// LoadConfig reads the configuration file at path, expands ${VAR} from
// env, applies the RUNNER_NATS_* environment variables over it and
// validates the result.
//
// An empty path means ./config.yaml when that file exists, else the
// defaults alone; a path given explicitly must exist. env looks a variable
// up the way os.LookupEnv does (nil means os.LookupEnv).
//
// In the file, ${NAME} is replaced by the variable's value in every scalar
// value (an unset variable is an error naming it and the line),
// ${NAME:-word} gives word when NAME is unset or empty, and $${ is a
// literal ${. A key the program does not know is an error naming the key
// and its line, and so is a value that does not fit its key (the message
// says what the key takes). Every problem comes out at once, joined, in the
// order of the file: those of ${VAR}, keys and types, then Validate's
// (with the line of their key when the file gives it) and those of the
// RUNNER_NATS_* variables. Error messages never contain a secret: the
// secret fields, header values and URL user info, and what ${VAR}
// references gave, are masked (see Validate).
func LoadConfig(path string, env func(string) (string, bool)) (*Config, error) {
	if env == nil {
		env = os.LookupEnv
	}
	cfg := DefaultConfig()
	if path == "" {
		if st, err := os.Stat(DefaultConfigFile); err == nil && !st.IsDir() {
			path = DefaultConfigFile
		}
	}
	r := newReport(path)
	if path != "" {
		if err := cfg.loadFile(path, env, r); err != nil {
			return nil, cfg.redact(err)
		}
	}
	envErr := cfg.applyEnv(env)
	// Validation goes on after the problems of the file, whose values were
	// left at their defaults, so that every problem comes out at once.
	r.addValidation(cfg.validationProblems())
	if err := errors.Join(r.err(), envErr); err != nil {
		return nil, cfg.redact(err)
	}
	return cfg, nil
}

// loadFile reads the configuration file at path over c, expanding ${VAR}
// from env, and records the file and the variables it used. The problems
// of its keys and values go to r; it returns an error only when the file
// cannot be read or parsed. Nothing here is redacted.
func (c *Config) loadFile(path string, env func(string) (string, bool), r *report) error {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("configuration file %s does not exist", path)
		}
		return fmt.Errorf("reading configuration file: %w", err)
	}
	used := map[string]bool{}
	record := func(name string) (string, bool) {
		v, ok := env(name)
		if ok {
			used[name] = true
		}
		return v, ok
	}
	if err := decodeConfig(r, data, record, c); err != nil {
		return err
	}
	c.File = path
	c.ExpandedVars = slices.Sorted(maps.Keys(used))
	return nil
}

// decodeConfig parses data, the file of r, expands variables, checks
// every key and value, and decodes into cfg, which holds the defaults.
// Problems go to r; a value with one keeps its default.
func decodeConfig(r *report, data []byte, env func(string) (string, bool), cfg *Config) (err error) {
	// The YAML library is third-party code fed with user input: turn a
	// panic in it into an error rather than crashing the program.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: cannot parse the YAML: %v", r.file, p)
		}
	}()
	doc, err := parseDocument(r.file, data)
	if doc == nil || err != nil {
		return err
	}
	x := &expansion{report: r, env: env, tainted: map[*yaml.Node]bool{}, origin: map[*yaml.Node]string{}}
	x.node(doc, "")
	cfg.ExpandedKeys, cfg.expandedValues = x.keys, x.values
	checkDocument(r, doc, x.origin)
	if err := doc.Decode(cfg); err != nil {
		r.problems = append(r.problems, yamlProblems(r.file, err)...)
	}
	return nil
}

// parseDocument parses data and returns the mapping at its top, or nil
// when the file holds nothing (no content, only comments, or "~").
func parseDocument(file string, data []byte) (*yaml.Node, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(file, err)
	}
	if root.Kind == 0 || (root.Kind == yaml.DocumentNode && len(root.Content) == 0) {
		return nil, nil // empty file: defaults
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode {
		doc = doc.Content[0]
	}
	if doc.Kind == yaml.ScalarNode && doc.ShortTag() == "!!null" {
		return nil, nil // a file with only comments or "~"
	}
	if doc.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: the configuration must be a mapping of keys to values", file, doc.Line)
	}
	return doc, nil
}

var (
	yamlLine      = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)
	yamlTypeError = regexp.MustCompile("^cannot unmarshal (\\S+)(?: `.*`)? into (.+)$")
)

// yamlError rewrites the YAML library's "line N: msg" errors as
// "file:N: msg", one error per problem (see yamlProblems).
func yamlError(file string, err error) error {
	ps := yamlProblems(file, err)
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p.err
	}
	return errors.Join(errs...)
}

// yamlProblems are the problems in an error of the YAML library, each at
// its line. The value in a type error is left out: it may be a secret put
// in the wrong place. checkDocument finds type errors first and says more;
// this is for what it may miss.
func yamlProblems(file string, err error) []lineProblem {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	out := make([]lineProblem, 0, len(msgs))
	for _, m := range msgs {
		sm := yamlLine.FindStringSubmatch(m)
		if sm == nil {
			out = append(out, lineProblem{err: fmt.Errorf("%s: %s", file, strings.TrimPrefix(m, "yaml: "))})
			continue
		}
		msg := m[len(sm[0]):]
		if tm := yamlTypeError.FindStringSubmatch(msg); tm != nil {
			msg = fmt.Sprintf("cannot use a %s value as %s", tm[1], tm[2])
		}
		n, _ := strconv.Atoi(sm[1])
		out = append(out, lineProblem{line: n, err: fmt.Errorf("%s:%d: %s", file, n, msg)})
	}
	return out
}
