package runnerstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// PrivateDataDir is an ansible-runner private data directory as
// LoadPrivateDataDir read it. It holds what the directory asks for; NewJob
// decides what of it a job may have.
//
// Layout (ansible-runner 2.3.1): project/ (playbooks, the working
// directory), inventory/ (a directory or a file), env/extravars,
// env/envvars, env/settings and env/passwords (JSON, else YAML, holding a
// mapping), env/cmdline (ansible-playbook options, split like a shell
// does), env/ssh_key (a private key), and args (a raw command line run
// instead of ansible-playbook).
type PrivateDataDir struct {
	// Dir is the directory: absolute, symlinks resolved.
	Dir string
	// ExtraVars is env/extravars; nil when there is no such file, empty
	// when the file is empty.
	ExtraVars map[string]any
	// EnvVars is env/envvars, every value a string as ansible-runner makes
	// it: numbers as Python prints them, booleans True/False, null None.
	EnvVars map[string]string
	// Cmdline is env/cmdline split with Python's shlex.split rules; nil
	// when there is no such file.
	Cmdline []string
	// Settings is env/settings.
	Settings Settings
	// HasPasswords reports an env/passwords that is not empty.
	HasPasswords bool
	// HasSSHKey reports an env/ssh_key that is not empty.
	HasSSHKey bool
	// HasRawArgs reports an args file: a command line ansible-runner runs
	// instead of ansible-playbook.
	HasRawArgs bool

	// settings is env/settings as read, merged with the settings kwarg by
	// NewJob.
	settings map[string]any
}

// Settings are the keys of env/settings that ansible-runner 2.3.1 reads
// for a playbook run. Timeouts are whole or fractional seconds in the file;
// 0 (or no key) means none.
type Settings struct {
	// JobTimeout ends the run when it lasts longer (job_timeout).
	JobTimeout time.Duration
	// IdleTimeout ends the run after that long without output
	// (idle_timeout).
	IdleTimeout time.Duration
	// PexpectTimeout is how often ansible-runner checks the timeouts and
	// cancellation (pexpect_timeout, 5 s when unset).
	PexpectTimeout time.Duration
	// SuppressOutputFile leaves the artifact stdout file out
	// (suppress_output_file).
	SuppressOutputFile bool
	// SuppressAnsibleOutput keeps the playbook output off the console
	// (suppress_ansible_output).
	SuppressAnsibleOutput bool
	// FactCache names the fact cache directory inside the artifact
	// directory (fact_cache; "" means fact_cache).
	FactCache string
	// FactCacheType is fact_cache_type; FactCache applies only when it is
	// "" or jsonfile.
	FactCacheType string
	// ProcessIsolation asks for a container or bwrap sandbox
	// (process_isolation), which ansible-worker does not provide.
	ProcessIsolation bool
	// DirectoryIsolationBasePath asks for the project to be copied there
	// (directory_isolation_base_path).
	DirectoryIsolationBasePath string
	// Extra holds every other key (container and process isolation
	// details, pexpect_use_poll, settings of event plugins such as
	// nats_subject_id).
	Extra map[string]any
}

// pddMaxFileSize bounds each file LoadPrivateDataDir reads.
const pddMaxFileSize = 16 << 20

// LoadPrivateDataDir reads the private data directory dir the way
// ansible-runner 2.3.1 does, and checks that its files are what they say:
// a file that does not parse, holds something else than a mapping, is not
// a regular file, or is a symlink leading out of dir is an error naming it
// (ansible-runner would ignore such a file silently). Errors never quote
// the content of a file.
func LoadPrivateDataDir(dir string) (*PrivateDataDir, error) {
	real, err := filepath.EvalSymlinks(dir)
	if err == nil {
		real, err = filepath.Abs(real)
	}
	if err != nil {
		return nil, fmt.Errorf("private data directory: %w", err)
	}
	if fi, err := os.Stat(real); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("private data directory %s is not a directory", dir)
	}
	p := &PrivateDataDir{Dir: real}
	for _, load := range []func() error{p.loadExtraVars, p.loadEnvVars, p.loadCmdline,
		p.loadSettings, p.loadPasswords, p.loadSSHKey, p.loadRawArgs} {
		if err := load(); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *PrivateDataDir) loadExtraVars() error {
	m, ok, err := pddReadMapping(p.Dir, "env/extravars")
	if ok {
		p.ExtraVars = m
	}
	return err
}

func (p *PrivateDataDir) loadEnvVars() error {
	m, ok, err := pddReadMapping(p.Dir, "env/envvars")
	if !ok || err != nil {
		return err
	}
	p.EnvVars, err = pddEnvStrings("env/envvars", m)
	return err
}

func (p *PrivateDataDir) loadCmdline() error {
	b, ok, err := pddRead(p.Dir, "env/cmdline")
	if !ok || err != nil {
		return err
	}
	if !utf8.Valid(b) {
		return errors.New("env/cmdline is not UTF-8 text")
	}
	args, err := pddShlexSplit(string(b))
	if err != nil {
		return fmt.Errorf("env/cmdline: %w", err)
	}
	p.Cmdline = append([]string{}, args...)
	return nil
}

func (p *PrivateDataDir) loadSettings() error {
	m, ok, err := pddReadMapping(p.Dir, "env/settings")
	if !ok || err != nil {
		return err
	}
	p.settings = m
	p.Settings, err = pddSettings("env/settings", m)
	return err
}

// loadPasswords only notes that env/passwords asks for something: its
// content is never kept, and never quoted.
func (p *PrivateDataDir) loadPasswords() error {
	b, ok, err := pddRead(p.Dir, "env/passwords")
	if !ok || err != nil {
		return err
	}
	m, perr := pddParseMapping(b)
	p.HasPasswords = perr != nil || len(m) > 0
	return nil
}

func (p *PrivateDataDir) loadSSHKey() error {
	b, ok, err := pddRead(p.Dir, "env/ssh_key")
	p.HasSSHKey = ok && len(b) > 0
	return err
}

func (p *PrivateDataDir) loadRawArgs() error {
	b, ok, err := pddRead(p.Dir, "args")
	p.HasRawArgs = ok && len(b) > 0
	return err
}

// pddRead returns the content of the file rel in dir; ok is false when it
// does not exist. A symlink may lead only to a regular file inside dir.
func pddRead(dir, rel string) (data []byte, ok bool, err error) {
	name := filepath.Join(dir, filepath.FromSlash(rel))
	if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	} else if err != nil {
		return nil, false, fmt.Errorf("%s: %w", rel, err)
	}
	real, err := filepath.EvalSymlinks(name)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", rel, err)
	}
	if !pddInside(dir, real) {
		return nil, false, fmt.Errorf("%s is a symlink leading outside the private data directory", rel)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", rel, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, false, fmt.Errorf("%s is not a regular file", rel)
	}
	if fi.Size() > pddMaxFileSize {
		return nil, false, fmt.Errorf("%s is larger than %d bytes", rel, pddMaxFileSize)
	}
	data, err = pddReadFile(real)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", rel, err)
	}
	return data, true, nil
}

func pddReadFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, pddMaxFileSize+1))
	if err == nil && len(b) > pddMaxFileSize {
		err = fmt.Errorf("larger than %d bytes", pddMaxFileSize)
	}
	return b, err
}

// pddInside reports whether path is base or below it; both are absolute
// and resolved.
func pddInside(base, path string) bool {
	r, err := filepath.Rel(base, path)
	return err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator)) && !filepath.IsAbs(r)
}

// pddReadMapping reads and parses the file rel of dir as a mapping.
func pddReadMapping(dir, rel string) (map[string]any, bool, error) {
	b, ok, err := pddRead(dir, rel)
	if !ok || err != nil {
		return nil, ok, err
	}
	m, err := pddParseMapping(b)
	if err != nil {
		return nil, true, fmt.Errorf("%s: %w", rel, err)
	}
	return m, true, nil
}

// pddParseMapping parses data as ansible-runner's loader does: JSON when
// that gives something, else YAML (with PyYAML's YAML 1.1 rules: yes/no
// and on/off are booleans, 0755 is octal, 1:30 is 90). The result must be
// a mapping; an empty document is an empty one. Errors never quote data.
func pddParseMapping(data []byte) (map[string]any, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("not UTF-8 text")
	}
	v, err := pddParseValue(data)
	if err != nil {
		return nil, err
	}
	switch m := v.(type) {
	case nil:
		return map[string]any{}, nil
	case map[string]any:
		return m, nil
	default:
		return nil, fmt.Errorf("holds %s, not a mapping of keys to values", pddKind(v))
	}
}

// pddParseValue parses JSON, else YAML, into nil, bool, string,
// json.Number (integers), float64, []any and map[string]any.
func pddParseValue(data []byte) (any, error) {
	if v, ok := pddParseJSON(data); ok && pddTruthy(v) {
		return v, nil
	}
	v, err := schemas.DecodeYAML11(data, schemas.YAML11Options{MaxDepth: pddMaxDepth, MaxNodes: pddMaxNodes})
	var se *schemas.YAMLSyntaxError
	if errors.As(err, &se) {
		// JSON was tried first: neither reads it.
		return nil, errors.New("not valid JSON or YAML" + se.Detail())
	}
	return v, err
}

// Bounds of the YAML of env files: nesting, and nodes converted (aliases
// counted each time they are used).
const (
	pddMaxDepth = 1000
	pddMaxNodes = 1 << 20
)

// pddParseJSON decodes data as one JSON value, as Python's json.loads.
func pddParseJSON(data []byte) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil, false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, false
	}
	v, err := pddNormJSON(v)
	return v, err == nil
}

// pddNormJSON turns JSON numbers into json.Number (integers, canonical) or
// float64, as Python's json module does.
func pddNormJSON(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		return pddJSONNumber(string(x))
	case []any:
		for i := range x {
			var err error
			if x[i], err = pddNormJSON(x[i]); err != nil {
				return nil, err
			}
		}
	case map[string]any:
		for k := range x {
			var err error
			if x[k], err = pddNormJSON(x[k]); err != nil {
				return nil, err
			}
		}
	}
	return v, nil
}

func pddJSONNumber(s string) (any, error) {
	if strings.ContainsAny(s, ".eE") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, err
		}
		return f, nil
	}
	i, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return nil, fmt.Errorf("bad number")
	}
	return json.Number(i.String()), nil
}

// pddTruthy is Python's truth value of a parsed value.
func pddTruthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case json.Number:
		return x != "0"
	case float64:
		return x != 0
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

// pddKind names the type of a parsed value for error messages.
func pddKind(v any) string { return schemas.ValueKind(v) }

// pddEnvStrings makes the environment variables of m strings. Names must
// be usable in an environment; values must be scalars without NUL. Errors
// name the variable, never its value.
func pddEnvStrings(file string, m map[string]any) (map[string]string, error) {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return nil, fmt.Errorf("%s: %q is not an environment variable name", file, pddClip(k))
		}
		s, err := schemas.PythonStr(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: the value is %s; give a string", file, k, pddKind(v))
		}
		if strings.ContainsRune(s, 0) {
			return nil, fmt.Errorf("%s: %s: the value contains a NUL character", file, k)
		}
		out[k] = s
	}
	return out, nil
}

// pddClip shortens a name quoted in an error.
func pddClip(s string) string {
	const max = 80
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	return string([]rune(s)[:max]) + "…"
}

// pddSettings reads the settings ansible-runner knows from m.
func pddSettings(file string, m map[string]any) (Settings, error) {
	s := Settings{Extra: map[string]any{}}
	var err error
	for k, v := range m {
		switch k {
		case "job_timeout":
			s.JobTimeout, err = pddSeconds(v)
		case "idle_timeout":
			s.IdleTimeout, err = pddSeconds(v)
		case "pexpect_timeout":
			s.PexpectTimeout, err = pddSeconds(v)
		case "suppress_output_file":
			s.SuppressOutputFile = pddTruthy(v)
		case "suppress_ansible_output":
			s.SuppressAnsibleOutput = pddTruthy(v)
		case "process_isolation":
			s.ProcessIsolation = pddTruthy(v)
		case "fact_cache":
			s.FactCache, err = pddOptString(v)
		case "fact_cache_type":
			s.FactCacheType, err = pddOptString(v)
		case "directory_isolation_base_path":
			s.DirectoryIsolationBasePath, err = pddOptString(v)
		default:
			s.Extra[k] = v
		}
		if err != nil {
			return Settings{}, fmt.Errorf("%s: %s: %w", file, k, err)
		}
	}
	return s, nil
}

// pddMaxSeconds bounds timeouts (about 290 years fit in a Duration).
const pddMaxSeconds = 100 * 365 * 24 * 3600

// pddSeconds reads a timeout in seconds; null and 0 mean none.
func pddSeconds(v any) (time.Duration, error) {
	var f float64
	switch x := v.(type) {
	case nil:
		return 0, nil
	case json.Number:
		var err error
		if f, err = strconv.ParseFloat(string(x), 64); err != nil {
			return 0, errors.New("must be a number of seconds")
		}
	case float64:
		f = x
	default:
		return 0, fmt.Errorf("must be a number of seconds, not %s", pddKind(v))
	}
	if math.IsNaN(f) || f < 0 || f > pddMaxSeconds {
		return 0, fmt.Errorf("must be a number of seconds from 0 to %d", pddMaxSeconds)
	}
	return time.Duration(f * float64(time.Second)), nil
}

func pddOptString(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	}
	return "", fmt.Errorf("must be a string, not %s", pddKind(v))
}

// pddShlexSplit splits s as Python's shlex.split(s) does (POSIX mode, no
// comments): whitespace separates words; single quotes keep everything;
// in double quotes a backslash escapes only " and \; outside quotes it
// escapes any character.
func pddShlexSplit(s string) ([]string, error) {
	sp := pddSplitter{state: ' '}
	for _, r := range s {
		sp.next(r)
	}
	switch sp.state {
	case '\'', '"':
		return nil, errors.New("no closing quotation")
	case '\\':
		return nil, errors.New("no escaped character after the final backslash")
	}
	sp.emit()
	return sp.words, nil
}

// pddSplitter is the state of pddShlexSplit: state is ' ' between words,
// 'a' in a word, a quote inside quotes, '\\' after a backslash (back to
// escaped then).
type pddSplitter struct {
	words   []string
	word    strings.Builder
	quoted  bool
	state   rune
	escaped rune
}

func (sp *pddSplitter) next(r rune) {
	switch sp.state {
	case ' ', 'a':
		switch r {
		case ' ', '\t', '\r', '\n':
			sp.emit()
			sp.state = ' '
		case '\\':
			sp.escaped, sp.state = 'a', '\\'
		case '\'', '"':
			sp.state = r
		default:
			sp.word.WriteRune(r)
			sp.state = 'a'
		}
	case '\'', '"':
		sp.quoted = true
		switch {
		case r == sp.state:
			sp.state = 'a'
		case sp.state == '"' && r == '\\':
			sp.escaped, sp.state = '"', '\\'
		default:
			sp.word.WriteRune(r)
		}
	case '\\':
		if sp.escaped == '"' && r != '"' && r != '\\' {
			sp.word.WriteByte('\\')
		}
		sp.word.WriteRune(r)
		sp.state = sp.escaped
	}
}

// emit ends the current word, if there is one (an empty quoted word is
// one).
func (sp *pddSplitter) emit() {
	if sp.word.Len() > 0 || sp.quoted {
		sp.words = append(sp.words, sp.word.String())
	}
	sp.word.Reset()
	sp.quoted = false
}
