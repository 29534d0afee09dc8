package runnerstream

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ansible-worker/ansible-worker/schemas"
	"github.com/ansible-worker/ansible-worker/worker"
)

// Kwargs are the run arguments of a transmit stream's first line,
// {"kwargs": {...}}, as ansible-runner 2.3.1 writes them: its transmit
// command writes every key from Ident to SuppressEnvFiles (null when not
// given); the Python API (ansible_runner.run(streamer="transmit", ...))
// can add the keys from EnvVars on. Keys ansible-runner does not know are
// kept in Extra. A key of the wrong type is an error naming the key.
//
// NewJob decides what a job may use; keys it does not name are carried
// but have no effect on ansible-worker (quiet, json_mode,
// rotate_artifacts, suppress_env_files, check_job_event_data, container
// settings while process_isolation is off).
type Kwargs struct {
	// Ident names the run and its artifact directory (ident).
	Ident string
	// Binary replaces ansible-playbook (binary): refused by NewJob.
	Binary string
	// Playbook is the playbook, relative to the project directory
	// (playbook).
	Playbook string
	// Module asks for an ad-hoc ansible command (module): refused by
	// NewJob. ModuleArgs and HostPattern go with it (module_args,
	// host_pattern; the CLI also sends --hosts of a role run as
	// host_pattern, which ansible-runner then ignores, as NewJob does).
	Module, ModuleArgs, HostPattern string
	// Verbosity is the number of -v (verbosity).
	Verbosity *int
	// Quiet, RotateArtifacts and JSONMode only change ansible-runner's own
	// output and artifacts (quiet, rotate_artifacts, json_mode).
	Quiet           bool
	RotateArtifacts int
	JSONMode        bool
	// OmitEventData and OnlyFailedEventData strip event_data from events
	// (omit_event_data, only_failed_event_data).
	OmitEventData, OnlyFailedEventData bool
	// Inventory is a path relative to the private data directory, a list
	// of them, or null for <private data dir>/inventory (inventory).
	Inventory any
	// Forks is --forks (forks; ansible-runner's CLI writes it as a string,
	// which is accepted).
	Forks *int
	// ProjectDir replaces <private data dir>/project (project_dir).
	ProjectDir string
	// ArtifactDir replaces <private data dir>/artifacts (artifact_dir).
	ArtifactDir string
	// RolesPath becomes ANSIBLE_ROLES_PATH (roles_path; a list, or one
	// string).
	RolesPath []string
	// ProcessIsolation and the keys after it ask for a container or bwrap
	// sandbox (process_isolation, process_isolation_executable,
	// process_isolation_path, process_isolation_hide_paths,
	// process_isolation_show_paths, process_isolation_ro_paths,
	// container_image, container_volume_mounts, container_options).
	ProcessIsolation           *bool
	ProcessIsolationExecutable string
	ProcessIsolationPath       string
	ProcessIsolationHidePaths  []string
	ProcessIsolationShowPaths  []string
	ProcessIsolationROPaths    []string
	ContainerImage             string
	ContainerVolumeMounts      []string
	ContainerOptions           []string
	// DirectoryIsolationBasePath asks for the project to be copied there
	// first (directory_isolation_base_path).
	DirectoryIsolationBasePath string
	// Cmdline replaces env/cmdline (cmdline).
	Cmdline string
	// Limit is --limit (limit; "" means none).
	Limit string
	// SuppressEnvFiles kept transmit from writing env/ files
	// (suppress_env_files).
	SuppressEnvFiles bool

	// EnvVars are environment variables, merged under env/envvars
	// (envvars).
	EnvVars map[string]any
	// ExtraVars are extra vars, given after env/extravars (extravars).
	ExtraVars map[string]any
	// Passwords answer prompts (passwords): refused by NewJob. Kept as
	// sent, never parsed.
	Passwords json.RawMessage
	// Settings are merged under env/settings (settings).
	Settings map[string]any
	// SSHKey is a private key for an ssh-agent (ssh_key): refused by
	// NewJob.
	SSHKey string
	// Tags and SkipTags are --tags and --skip-tags (tags, skip_tags).
	Tags, SkipTags string
	// Timeout replaces the job_timeout setting, in seconds (timeout).
	Timeout *int
	// FactCache and FactCacheType choose the fact cache (fact_cache,
	// fact_cache_type; "" means jsonfile in fact_cache).
	FactCache, FactCacheType string
	// CheckJobEventData is check_job_event_data.
	CheckJobEventData bool

	// Extra holds the keys not named above, as sent.
	Extra map[string]json.RawMessage
}

// jobKwField names one key of Kwargs; api keys come only from ansible-
// runner's Python API and are left out of MarshalJSON when empty.
type jobKwField struct {
	name string
	ptr  any
	api  bool
}

// jobFields lists the keys in the order ansible-runner's transmit writes
// them.
func (k *Kwargs) jobFields() []jobKwField {
	return []jobKwField{
		{"ident", &k.Ident, false}, {"binary", &k.Binary, false}, {"playbook", &k.Playbook, false},
		{"module", &k.Module, false}, {"module_args", &k.ModuleArgs, false},
		{"host_pattern", &k.HostPattern, false}, {"verbosity", &k.Verbosity, false},
		{"quiet", &k.Quiet, false}, {"rotate_artifacts", &k.RotateArtifacts, false},
		{"json_mode", &k.JSONMode, false}, {"omit_event_data", &k.OmitEventData, false},
		{"only_failed_event_data", &k.OnlyFailedEventData, false}, {"inventory", &k.Inventory, false},
		{"forks", &k.Forks, false}, {"project_dir", &k.ProjectDir, false},
		{"artifact_dir", &k.ArtifactDir, false}, {"roles_path", &k.RolesPath, false},
		{"process_isolation", &k.ProcessIsolation, false},
		{"process_isolation_executable", &k.ProcessIsolationExecutable, false},
		{"process_isolation_path", &k.ProcessIsolationPath, false},
		{"process_isolation_hide_paths", &k.ProcessIsolationHidePaths, false},
		{"process_isolation_show_paths", &k.ProcessIsolationShowPaths, false},
		{"process_isolation_ro_paths", &k.ProcessIsolationROPaths, false},
		{"container_image", &k.ContainerImage, false},
		{"container_volume_mounts", &k.ContainerVolumeMounts, false},
		{"container_options", &k.ContainerOptions, false},
		{"directory_isolation_base_path", &k.DirectoryIsolationBasePath, false},
		{"cmdline", &k.Cmdline, false}, {"limit", &k.Limit, false},
		{"suppress_env_files", &k.SuppressEnvFiles, false},
		{"envvars", &k.EnvVars, true}, {"extravars", &k.ExtraVars, true},
		{"passwords", &k.Passwords, true}, {"settings", &k.Settings, true},
		{"ssh_key", &k.SSHKey, true}, {"tags", &k.Tags, true}, {"skip_tags", &k.SkipTags, true},
		{"timeout", &k.Timeout, true}, {"fact_cache", &k.FactCache, true},
		{"fact_cache_type", &k.FactCacheType, true},
		{"check_job_event_data", &k.CheckJobEventData, true},
	}
}

// UnmarshalJSON reads the kwargs object. null is the zero value of any
// key.
func (k *Kwargs) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("kwargs: %w", err)
	}
	*k = Kwargs{}
	for _, f := range k.jobFields() {
		v, ok := raw[f.name]
		if !ok {
			continue
		}
		delete(raw, f.name)
		if err := jobDecodeKw(v, f.ptr); err != nil {
			return fmt.Errorf("kwargs: %s: %w", f.name, err)
		}
	}
	if len(raw) > 0 {
		k.Extra = raw
	}
	return nil
}

// jobDecodeKw decodes one value into the field ptr points to.
func jobDecodeKw(v json.RawMessage, ptr any) error {
	if string(bytes.TrimSpace(v)) == "null" {
		return nil
	}
	switch p := ptr.(type) {
	case *string:
		return jobDecodeAs(v, p, "a string")
	case *bool:
		return jobDecodeAs(v, p, "true or false")
	case **bool:
		return jobDecodeAs(v, p, "true or false")
	case *int:
		return jobDecodeAs(v, p, "a whole number")
	case **int:
		n, err := jobDecodeInt(v)
		*p = &n
		return err
	case *[]string:
		return jobDecodeStrings(v, p)
	case *map[string]any:
		return jobDecodeMap(v, p)
	case *any:
		x, ok := pddParseJSON(v)
		if !ok {
			return errors.New("not valid JSON")
		}
		*p = x
		return nil
	case *json.RawMessage:
		*p = append(json.RawMessage{}, v...)
		return nil
	}
	return fmt.Errorf("internal error: no decoder for %T", ptr)
}

func jobDecodeAs(v json.RawMessage, p any, want string) error {
	if json.Unmarshal(v, p) != nil {
		return fmt.Errorf("must be %s", want)
	}
	return nil
}

// jobDecodeInt reads a whole number, or a string holding one (as
// ansible-runner's CLI sends forks).
func jobDecodeInt(v json.RawMessage) (int, error) {
	var s string
	if json.Unmarshal(v, &s) != nil {
		s = string(bytes.TrimSpace(v))
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, errors.New("must be a whole number")
	}
	return n, nil
}

// jobDecodeStrings reads a list of strings, or one string.
func jobDecodeStrings(v json.RawMessage, p *[]string) error {
	var one string
	if json.Unmarshal(v, &one) == nil {
		*p = []string{one}
		return nil
	}
	if json.Unmarshal(v, p) != nil {
		return errors.New("must be a list of strings")
	}
	return nil
}

func jobDecodeMap(v json.RawMessage, p *map[string]any) error {
	x, ok := pddParseJSON(v)
	m, isMap := x.(map[string]any)
	if !ok || !isMap {
		return errors.New("must be a mapping")
	}
	*p = m
	return nil
}

// MarshalJSON writes the kwargs object with the keys in ansible-runner's
// order: empty strings and unset values as null, as its transmit writes
// them; keys of its Python API only when set; then Extra.
func (k Kwargs) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	first := true
	put := func(name string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("kwargs: %s: %w", name, err)
		}
		if !first {
			buf.WriteByte(',')
		}
		first = false
		nb, _ := json.Marshal(name)
		buf.Write(nb)
		buf.WriteByte(':')
		buf.Write(b)
		return nil
	}
	for _, f := range k.jobFields() {
		v, omit := jobKwValue(f)
		if omit {
			continue
		}
		if err := put(f.name, v); err != nil {
			return nil, err
		}
	}
	for _, name := range jobSortedKeys(k.Extra) {
		if err := put(name, k.Extra[name]); err != nil {
			return nil, err
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// jobKwValue is the value MarshalJSON writes for a field, or omit.
func jobKwValue(f jobKwField) (v any, omit bool) {
	switch p := f.ptr.(type) {
	case *string:
		return jobNilIf(*p, *p == ""), f.api && *p == ""
	case *bool:
		return *p, f.api && !*p
	case *int:
		return *p, f.api && *p == 0
	case **int:
		return jobNilIf(*p, *p == nil), f.api && *p == nil
	case **bool:
		return jobNilIf(*p, *p == nil), f.api && *p == nil
	case *[]string:
		return jobNilIf(*p, *p == nil), f.api && *p == nil
	case *map[string]any:
		return jobNilIf(*p, *p == nil), f.api && *p == nil
	case *json.RawMessage:
		return jobNilIf(*p, len(*p) == 0), f.api && len(*p) == 0
	case *any:
		return *p, f.api && *p == nil
	}
	return nil, true
}

func jobNilIf(v any, null bool) any {
	if null {
		return nil
	}
	return v
}

func jobSortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Job is what ansible-playbook runs with for a transmitted job: the kwargs
// and the private data directory, checked by NewJob.
type Job struct {
	// Ident names the run (runner_ident) and its artifact directory.
	Ident string
	// Dir is the private data directory, absolute, symlinks resolved.
	Dir string
	// ProjectDir is the working directory: the project directory, or Dir
	// when there is none (as ansible-runner does).
	ProjectDir string
	// Playbook is the playbook relative to ProjectDir, symlinks resolved.
	Playbook string
	// Args are ansible-playbook's arguments, without the executable; the
	// playbook is the last.
	Args []string
	// Env holds what to add to the environment of ansible-playbook: the
	// job's environment variables, then what ansible-runner sets
	// (ANSIBLE_RETRY_FILES_ENABLED=False; ANSIBLE_HOST_KEY_CHECKING=False
	// unless the job or this process's environment sets it;
	// AWX_ISOLATED_DATA_DIR; the jsonfile fact cache in the artifact
	// directory), but not its callback settings.
	Env map[string]string
	// Timeout and IdleTimeout end the run (0: none).
	Timeout, IdleTimeout time.Duration
	// ArtifactDir is <Dir>/artifacts/<Ident>, created empty by NewJob.
	ArtifactDir string
	// ExtraVarsFiles are the files NewJob wrote extra vars to, in the
	// order Args names them.
	ExtraVarsFiles []string
	// SuppressOutputFile leaves the stdout artifact out.
	SuppressOutputFile bool
	// OmitEventData and OnlyFailedEventData strip event_data from events.
	OmitEventData, OnlyFailedEventData bool
}

// Spec is how the worker package runs the job.
func (j *Job) Spec() worker.JobSpec {
	return worker.JobSpec{Ident: j.Ident, Dir: j.Dir, ProjectDir: j.ProjectDir, Playbook: j.Playbook, Args: j.Args,
		Env: j.Env, Timeout: j.Timeout, IdleTimeout: j.IdleTimeout}
}

// JobOptions say how far a job is trusted.
type JobOptions struct {
	// Trusted is for a stream the operator runs themselves (the local
	// `ansible-worker worker` fed by a pipe, as ansible-runner's worker
	// is): environment variables, cmdline options and extra vars are
	// then taken as ansible-runner takes them. The path checks stay, and
	// passwords, ssh_key, raw args, ad-hoc commands and process isolation
	// are still refused. Without it a job is data from someone the
	// worker does not trust; see NewJob.
	Trusted bool
	// MaxForks bounds forks (from kwargs or cmdline). 0 means
	// worker.DefaultMaxForks, or no bound when Trusted.
	MaxForks int
	// MaxTimeout, when positive, bounds the job's timeout and is its
	// timeout when it has none.
	MaxTimeout time.Duration
	// AllowLimitRegex lets an untrusted job's --limit use ~regex
	// patterns, which can take a CPU for minutes on a crafted pattern.
	AllowLimitRegex bool
}

// ErrJobRefused is wrapped by every error of NewJob that refuses what a
// job asks for. Such an error names the file (or kwargs) and the key or
// option, never a value that could be secret.
var ErrJobRefused = worker.ErrJobRefused

// jobRefusal is an error of NewJob refusing something.
type jobRefusal struct{ where, what, why string }

func (e *jobRefusal) Error() string {
	if e.what == "" {
		return e.where + ": " + e.why
	}
	return e.where + ": " + e.what + ": " + e.why
}

// Is makes errors.Is(err, ErrJobRefused) true.
func (e *jobRefusal) Is(target error) bool { return target == ErrJobRefused }

func jobRefuse(where, what, format string, a ...any) error {
	return &jobRefusal{where: where, what: what, why: fmt.Sprintf(format, a...)}
}

// NewJob checks a transmitted job and returns how to run it: the argv of
// ansible-playbook as ansible-runner 2.3.1's RunnerConfig builds it for
// the same kwargs and files (cmdline options, -i, --limit, -e, -v…,
// --tags, --skip-tags, --forks, the playbook), the environment it adds,
// the working directory and the timeouts. It creates the artifact
// directory empty and writes the extra vars files.
//
// Differences from ansible-runner: extra vars always reach Ansible
// through a file (env/extravars itself when Trusted, else a copy of it in
// <Dir>/.ansible-worker/; kwargs extravars in a file there, where
// ansible-runner puts JSON on the command line); an untrusted cmdline is
// rewritten to one argv element per option value, and its -e values to a
// YAML mapping; a kwargs inventory is relative to Dir (as ansible-runner's
// worker makes it); "" means unset for every string kwarg.
//
// In every mode: the playbook must be a file inside the project directory
// and inventories inside Dir, symlinks resolved, without hidden path
// components; passwords and ssh_key (which ansible-runner feeds to
// prompts and to an ssh-agent), a raw args file, binary, ad-hoc module
// runs, process or directory isolation and artifact_dir are refused.
//
// Unless o.Trusted, the job is data:
//   - env/envvars and kwargs envvars may set ANSIBLE_* settings only from
//     an allowlist of settings that change output and play behaviour
//     (jobAnsibleEnvAllowed): Ansible has hundreds of settings and adds
//     more each release, and many load code (plugin and module paths,
//     callbacks, ANSIBLE_CONFIG, Jinja extensions), name a program
//     (*_EXECUTABLE, become) or a file (vault password, log path), or
//     choose a connection or privileges, so a denylist would fall behind.
//     ANSIBLE_ROLES_PATH is allowed when each entry is inside Dir. Other
//     variables are the playbook's inputs (proxies, credentials, settings
//     of tools) and are allowed except those that make a program load
//     code or choose which program or configuration runs
//     (jobEnvDeniedNames, jobEnvDeniedPrefixes: the loader's LD_* and
//     DYLD_*, interpreters' PYTHON*, PERL*, RUBY*, NODE_*, BASH_ENV, ENV,
//     PATH, HOME, GIT_*, SSH_AUTH_SOCK, ...).
//   - env/cmdline (or the cmdline kwarg) may hold only the options of
//     jobCmdlineOpts: --check/-C, --diff/-D, -v…/--verbose, --list-hosts,
//     --list-tasks, --list-tags, --syntax-check, --flush-cache,
//     --force-handlers, --limit/-l, --tags/-t, --skip-tags, --forks/-f,
//     --extra-vars/-e, --start-at-task; no positional arguments. -e takes
//     key=value words or a JSON/YAML mapping, never @FILE, and is
//     rewritten with every string marked !unsafe.
//   - host patterns (limit) and tags may not contain '@' or start with
//     '-'; limit may not use ~regex unless o.AllowLimitRegex; forks and
//     the timeout are bounded by o.MaxForks and o.MaxTimeout.
//   - extra vars (env/extravars, kwargs extravars, -e) may not set names
//     starting with ansible_ or names Ansible reserves
//     (worker.ReservedVarName), and reach Ansible with every string
//     tagged !unsafe, so "{{ ... }}" in them is never templated.
//
// What none of this covers: the project directory itself (playbooks,
// roles, plugin directories next to them, an ansible.cfg in it,
// group_vars) comes from the stream too and runs as code, as it does in
// ansible-runner. The checks keep a job's settings from adding code,
// programs, files or connections beyond what its project holds; a worker
// that takes jobs from untrusted submitters must also decide where their
// projects may run.
func NewJob(kw Kwargs, pdd *PrivateDataDir, o JobOptions) (*Job, error) {
	if pdd == nil {
		return nil, errors.New("new job: no private data directory")
	}
	b := &jobBuilder{kw: kw, pdd: pdd, o: o, job: &Job{Dir: pdd.Dir, Env: map[string]string{},
		OmitEventData: kw.OmitEventData, OnlyFailedEventData: kw.OnlyFailedEventData}}
	for _, step := range []func() error{b.settings, b.unsupported, b.secrets, b.ident, b.project,
		b.playbook, b.inventory, b.timeouts, b.factCache, b.env, b.extraVars, b.args, b.files} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return b.job, nil
}

// jobBuilder holds what NewJob has worked out so far.
type jobBuilder struct {
	kw      Kwargs
	pdd     *PrivateDataDir
	o       JobOptions
	job     *Job
	set     Settings
	invs    []string
	factDir string
	// fileVars (env/extravars) and kwVars (kwargs extravars) are the -e
	// @FILE arguments; data is nil for a file that exists already.
	fileVars, kwVars jobVarsFile
}

// jobVarsFile is one -e @FILE: its path and, when NewJob writes it, the
// data.
type jobVarsFile struct {
	path string
	data []byte
}

func (b *jobBuilder) settings() error {
	b.set = b.pdd.Settings
	if len(b.kw.Settings) == 0 {
		return nil
	}
	merged := map[string]any{}
	for k, v := range b.kw.Settings {
		merged[k] = v
	}
	for k, v := range b.pdd.settings {
		merged[k] = v
	}
	var err error
	b.set, err = pddSettings("kwargs settings", merged)
	return err
}

// unsupported refuses what ansible-worker does not do.
func (b *jobBuilder) unsupported() error {
	kw := b.kw
	switch {
	case kw.Binary != "":
		return jobRefuse("kwargs", "binary", "not supported: ansible-worker runs ansible-playbook")
	case kw.Module != "":
		return jobRefuse("kwargs", "module", "ad-hoc commands are not supported: name a playbook")
	case kw.ProcessIsolation != nil && *kw.ProcessIsolation, b.set.ProcessIsolation:
		return jobRefuse(b.where(kw.ProcessIsolation != nil && *kw.ProcessIsolation), "process_isolation",
			"not supported: ansible-worker runs ansible-playbook directly, not in a container or bwrap; isolate the worker itself")
	case kw.DirectoryIsolationBasePath != "" || b.set.DirectoryIsolationBasePath != "":
		return jobRefuse(b.where(kw.DirectoryIsolationBasePath != ""), "directory_isolation_base_path",
			"not supported: the playbook runs in the project directory of the private data directory")
	case kw.ArtifactDir != "":
		return jobRefuse("kwargs", "artifact_dir", "not supported: the artifacts go to artifacts/<ident> in the private data directory")
	case b.pdd.HasRawArgs:
		return jobRefuse("args", "", "a raw command line is not supported: ansible-worker runs ansible-playbook; "+
			"remove the file and name the playbook")
	}
	return nil
}

// where names kwargs or env/settings as the source of a setting.
func (b *jobBuilder) where(fromKwargs bool) string {
	if fromKwargs {
		return "kwargs"
	}
	return "env/settings"
}

// secrets refuses passwords and ssh keys, without looking at them.
func (b *jobBuilder) secrets() error {
	const prompts = "not supported: ansible-worker never answers prompts, which ansible-runner answers from it; " +
		"remove it and let Ansible run without prompting (keys in the worker's ssh-agent, " +
		"become passwords in inventory or vault files the operator provides)"
	const key = "not supported: ansible-worker starts no ssh-agent for a job, which ansible-runner loads this key into; " +
		"remove it and give the worker's user the key (its ssh-agent or ~/.ssh, set up by the operator)"
	switch {
	case b.pdd.HasPasswords:
		return jobRefuse("env/passwords", "", prompts)
	case len(b.kw.Passwords) > 0 && !jobEmptyJSON(b.kw.Passwords):
		return jobRefuse("kwargs", "passwords", prompts)
	case b.pdd.HasSSHKey:
		return jobRefuse("env/ssh_key", "", key)
	case b.kw.SSHKey != "":
		return jobRefuse("kwargs", "ssh_key", key)
	}
	return nil
}

// jobEmptyJSON reports null or an empty object or list.
func jobEmptyJSON(b json.RawMessage) bool {
	v, ok := pddParseJSON(b)
	return ok && !pddTruthy(v)
}

// jobIdentRE is compiled on first use: every ansible-worker process links
// this package, and compiling it at package init cost about 2 ms of each
// start.
var jobIdentRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
})

// ident checks the ident (it names a directory) or makes one.
func (b *jobBuilder) ident() error {
	id := b.kw.Ident
	if id == "" {
		id = jobNewUUID()
	}
	if !jobIdentRE().MatchString(id) {
		return jobRefuse("kwargs", "ident", "%q must be 1 to 128 letters, digits, '.', '_' or '-', "+
			"not starting with '.' or '-' (it names the artifact directory)", pddClip(id))
	}
	b.job.Ident = id
	b.job.ArtifactDir = filepath.Join(b.pdd.Dir, "artifacts", id)
	return nil
}

// jobNewUUID returns a random UUID, as ansible-runner's default ident.
func jobNewUUID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
}

// project finds the working directory: project_dir, else project/, else
// the private data directory itself.
func (b *jobBuilder) project() error {
	where, rel := "kwargs", b.kw.ProjectDir
	if rel == "" {
		if _, err := os.Lstat(filepath.Join(b.pdd.Dir, "project")); errors.Is(err, fs.ErrNotExist) {
			b.job.ProjectDir = b.pdd.Dir
			return nil
		}
		where, rel = "private data directory", "project"
	}
	real, err := jobResolve(b.pdd.Dir, "the private data directory", rel)
	if err == nil {
		if fi, serr := os.Stat(real); serr != nil || !fi.IsDir() {
			err = fmt.Errorf("%q is not a directory", pddClip(rel))
		}
	}
	if err != nil {
		return jobRefuse(where, "project_dir", "%v", err)
	}
	b.job.ProjectDir = real
	return nil
}

func (b *jobBuilder) playbook() error {
	pb := b.kw.Playbook
	if pb == "" {
		return jobRefuse("kwargs", "playbook", "missing: name the playbook to run, relative to the project directory")
	}
	real, err := jobResolve(b.job.ProjectDir, "the project directory", pb)
	if err == nil {
		if fi, serr := os.Stat(real); serr != nil || !fi.Mode().IsRegular() {
			err = fmt.Errorf("%q is not a file", pddClip(pb))
		}
	}
	if err != nil {
		return jobRefuse("kwargs", "playbook", "%v", err)
	}
	rel, err := filepath.Rel(b.job.ProjectDir, real)
	if err == nil && strings.HasPrefix(rel, "-") {
		err = fmt.Errorf("%q starts with '-', which ansible-playbook would read as an option", pddClip(pb))
	}
	if err != nil {
		return jobRefuse("kwargs", "playbook", "%v", err)
	}
	b.job.Playbook = rel
	return nil
}

// inventory finds the inventories: the kwargs ones (relative to the
// private data directory), else inventory/ when it exists.
func (b *jobBuilder) inventory() error {
	paths, given, err := jobInventoryPaths(b.kw.Inventory)
	if err != nil {
		return jobRefuse("kwargs", "inventory", "%v", err)
	}
	where := "kwargs"
	if !given {
		if _, err := os.Lstat(filepath.Join(b.pdd.Dir, "inventory")); err != nil {
			return nil // Ansible's own default, as with ansible-runner
		}
		where, paths = "private data directory", []string{"inventory"}
	}
	for _, p := range paths {
		real, err := jobResolve(b.pdd.Dir, "the private data directory", p)
		if err == nil && real == b.pdd.Dir {
			err = fmt.Errorf("%q is the private data directory itself: name an inventory file or directory in it", pddClip(p))
		}
		if err != nil {
			return jobRefuse(where, "inventory", "%v", err)
		}
		b.invs = append(b.invs, real)
	}
	return nil
}

// jobInventoryPaths reads the inventory kwarg; given is false when it
// leaves the default.
func jobInventoryPaths(v any) (paths []string, given bool, err error) {
	switch x := v.(type) {
	case nil:
		return nil, false, nil
	case string:
		return []string{x}, x != "", nil
	case []any:
		for _, e := range x {
			s, ok := e.(string)
			if !ok || s == "" {
				return nil, false, errors.New("a list of inventories must hold paths")
			}
			paths = append(paths, s)
		}
		return paths, true, nil
	case map[string]any:
		return nil, false, errors.New("an inventory given inline is not supported: write it to inventory/ " +
			"(ansible-runner's transmit does)")
	}
	return nil, false, fmt.Errorf("must be a path or a list of paths, not %s", pddKind(v))
}

// jobResolve checks that rel, relative to base, names something inside
// base: not absolute, no hidden component, symlinks resolved inside. It
// returns the resolved absolute path.
func jobResolve(base, baseName, rel string) (string, error) {
	q := pddClip(rel)
	switch {
	case filepath.IsAbs(rel):
		return "", fmt.Errorf("%q must be relative to %s", q, baseName)
	case strings.ContainsRune(rel, 0):
		return "", fmt.Errorf("%q contains a NUL character", q)
	case len(rel) > schemas.MaxPathLength:
		return "", fmt.Errorf("%q is longer than %d characters", q, schemas.MaxPathLength)
	}
	clean := filepath.ToSlash(filepath.Clean(rel))
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("%q leads outside %s", q, baseName)
	}
	for _, part := range strings.Split(clean, "/") {
		if strings.HasPrefix(part, ".") && part != "." && part != ".." {
			return "", fmt.Errorf("%q names a hidden file or directory (%s)", q, part)
		}
	}
	real, err := filepath.EvalSymlinks(filepath.Join(base, rel))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%q does not exist in %s", q, baseName)
	} else if err != nil {
		return "", fmt.Errorf("%q: %w", q, err)
	}
	if !pddInside(base, real) {
		return "", fmt.Errorf("%q leads outside %s", q, baseName)
	}
	if jobHidden(base, real) {
		return "", fmt.Errorf("%q leads to a hidden file or directory", q)
	}
	return real, nil
}

// timeouts takes the job timeout from kwargs or settings and bounds it.
func (b *jobBuilder) timeouts() error {
	t, where, what := b.set.JobTimeout, "env/settings", "job_timeout"
	if len(b.kw.Settings) > 0 {
		where = "kwargs settings"
	}
	if b.kw.Timeout != nil && *b.kw.Timeout != 0 {
		where, what = "kwargs", "timeout"
		if *b.kw.Timeout < 0 || *b.kw.Timeout > pddMaxSeconds {
			return jobRefuse(where, what, "must be a number of seconds from 0 to %d", pddMaxSeconds)
		}
		t = time.Duration(*b.kw.Timeout) * time.Second
	}
	if m := b.o.MaxTimeout; m > 0 {
		if t > m {
			return jobRefuse(where, what, "%s is more than the worker allows (%s)", t, m)
		}
		if t == 0 {
			t = m
		}
	}
	b.job.Timeout, b.job.IdleTimeout = t, b.set.IdleTimeout
	b.job.SuppressOutputFile = b.set.SuppressOutputFile
	return nil
}

// factCache chooses the fact cache directory as ansible-runner does: none
// unless the fact_cache_type kwarg is jsonfile (its default); a name from
// kwargs, replaced by the one of the settings.
func (b *jobBuilder) factCache() error {
	if typ := b.kw.FactCacheType; typ != "" && typ != "jsonfile" {
		return nil
	}
	where, name := "kwargs", b.kw.FactCache
	if s := b.set; s.FactCache != "" && (s.FactCacheType == "" || s.FactCacheType == "jsonfile") {
		where, name = "env/settings", s.FactCache
	}
	if name == "" {
		name = "fact_cache"
	}
	clean := filepath.ToSlash(filepath.Clean(name))
	if filepath.IsAbs(name) || strings.ContainsRune(name, 0) || clean == "." || clean == ".." ||
		strings.HasPrefix(clean, "../") || strings.HasPrefix(clean, ".") || strings.Contains(clean, "/.") {
		return jobRefuse(where, "fact_cache", "%q must name a directory inside the artifact directory", pddClip(name))
	}
	b.factDir = filepath.Join(b.job.ArtifactDir, clean)
	return nil
}

// env builds the environment additions: the job's variables (kwargs
// envvars under env/envvars), checked unless trusted, then what
// ansible-runner sets itself.
func (b *jobBuilder) env() error {
	vars, src, err := b.envVars()
	if err != nil {
		return err
	}
	for _, k := range jobSortedKeys(vars) {
		if vars[k], err = b.checkEnv(src[k], k, vars[k]); err != nil {
			return err
		}
	}
	if len(b.kw.RolesPath) > 0 {
		if vars["ANSIBLE_ROLES_PATH"], err = b.rolesPath("kwargs", "roles_path", b.kw.RolesPath); err != nil {
			return err
		}
	}
	vars["ANSIBLE_RETRY_FILES_ENABLED"] = "False"
	if _, ok := vars["ANSIBLE_HOST_KEY_CHECKING"]; !ok {
		if _, inherited := os.LookupEnv("ANSIBLE_HOST_KEY_CHECKING"); !inherited {
			vars["ANSIBLE_HOST_KEY_CHECKING"] = "False"
		}
	}
	vars["AWX_ISOLATED_DATA_DIR"] = b.job.ArtifactDir
	if b.factDir != "" {
		vars["ANSIBLE_CACHE_PLUGIN"] = "jsonfile"
		vars["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = b.factDir
	}
	b.job.Env = vars
	return nil
}

// envVars merges kwargs envvars (ANSIBLE_ROLES_PATH joined onto roles/,
// as ansible-runner's worker does) and env/envvars; src names where each
// came from.
func (b *jobBuilder) envVars() (vars, src map[string]string, err error) {
	vars, src = map[string]string{}, map[string]string{}
	if len(b.kw.EnvVars) > 0 {
		m, err := pddEnvStrings("kwargs envvars", b.kw.EnvVars)
		if err != nil {
			return nil, nil, err
		}
		if v, ok := m["ANSIBLE_ROLES_PATH"]; ok && !filepath.IsAbs(v) {
			m["ANSIBLE_ROLES_PATH"] = filepath.Join(b.pdd.Dir, "roles", v)
		}
		for k, v := range m {
			vars[k], src[k] = v, "kwargs envvars"
		}
	}
	for k, v := range b.pdd.EnvVars {
		vars[k], src[k] = v, "env/envvars"
	}
	return vars, src, nil
}

// checkEnv applies the policy for untrusted jobs to one variable and
// returns its value (ANSIBLE_ROLES_PATH resolved).
func (b *jobBuilder) checkEnv(where, k, v string) (string, error) {
	if b.o.Trusted {
		return v, nil
	}
	if k == "ANSIBLE_ROLES_PATH" {
		return b.rolesPath(where, k, strings.Split(v, ":"))
	}
	if why := jobEnvDenied(k); why != "" {
		return "", jobRefuse(where, k, "not allowed from an untrusted stream: %s", why)
	}
	return v, nil
}

// rolesPath joins roles directories; unless trusted each must be inside
// the private data directory (relative ones from the working directory,
// as Ansible reads them). Errors name entries by number: they are values.
func (b *jobBuilder) rolesPath(where, what string, entries []string) (string, error) {
	if b.o.Trusted {
		return strings.Join(entries, ":"), nil
	}
	out := make([]string, 0, len(entries))
	for i, e := range entries {
		if e == "" {
			continue
		}
		p := e
		if !filepath.IsAbs(p) {
			p = filepath.Join(b.job.ProjectDir, p)
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil || !pddInside(b.pdd.Dir, real) || jobHidden(b.pdd.Dir, real) {
			return "", jobRefuse(where, what, "entry %d is not a directory inside the private data directory "+
				"(roles from elsewhere are the operator's)", i+1)
		}
		out = append(out, real)
	}
	return strings.Join(out, ":"), nil
}

// jobHidden reports a hidden component in path below base.
func jobHidden(base, path string) bool {
	rel, _ := filepath.Rel(base, path)
	for _, part := range strings.Split(filepath.ToSlash(rel), "/") {
		if strings.HasPrefix(part, ".") && part != "." {
			return true
		}
	}
	return false
}

// jobAnsibleEnvAllowed are the Ansible settings an untrusted job may set
// in its environment: they change what is displayed and how the play
// behaves, never where code, configuration or programs come from, which
// files are read or written, how Ansible connects or with which
// privileges.
var jobAnsibleEnvAllowed = []string{
	"ANSIBLE_ACTION_WARNINGS", "ANSIBLE_ANY_ERRORS_FATAL", "ANSIBLE_CACHE_PLUGIN_TIMEOUT",
	"ANSIBLE_CALLBACK_FORMAT_PRETTY", "ANSIBLE_CALLBACK_RESULT_FORMAT", "ANSIBLE_CHECK_MODE_MARKERS",
	"ANSIBLE_COMMAND_WARNINGS", "ANSIBLE_DEPRECATION_WARNINGS", "ANSIBLE_DIFF_ALWAYS", "ANSIBLE_DIFF_CONTEXT",
	"ANSIBLE_DISPLAY_ARGS_TO_STDOUT", "ANSIBLE_DISPLAY_FAILED_STDERR", "ANSIBLE_DISPLAY_OK_HOSTS",
	"ANSIBLE_DISPLAY_SKIPPED_HOSTS", "ANSIBLE_DUPLICATE_YAML_DICT_KEY", "ANSIBLE_ERROR_ON_MISSING_HANDLER",
	"ANSIBLE_ERROR_ON_UNDEFINED_VARS", "ANSIBLE_FORCE_COLOR", "ANSIBLE_FORCE_HANDLERS", "ANSIBLE_GATHERING",
	"ANSIBLE_GATHER_SUBSET", "ANSIBLE_GATHER_TIMEOUT", "ANSIBLE_HASH_BEHAVIOUR", "ANSIBLE_HOST_KEY_CHECKING",
	"ANSIBLE_HOST_PATTERN_MISMATCH", "ANSIBLE_INJECT_FACT_VARS", "ANSIBLE_INVALID_TASK_ATTRIBUTE_FAILED",
	"ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", "ANSIBLE_INVENTORY_UNPARSED_FAILED",
	"ANSIBLE_INVENTORY_UNPARSED_WARNING", "ANSIBLE_JINJA2_NATIVE", "ANSIBLE_LOCALHOST_WARNING",
	"ANSIBLE_MAX_DIFF_SIZE", "ANSIBLE_NOCOLOR", "ANSIBLE_NOCOWS", "ANSIBLE_NO_LOG", "ANSIBLE_NO_TARGET_SYSLOG",
	"ANSIBLE_PIPELINING", "ANSIBLE_POLL_INTERVAL", "ANSIBLE_PRIVATE_ROLE_VARS", "ANSIBLE_RETRY_FILES_ENABLED",
	"ANSIBLE_RUN_VARS_PLUGINS", "ANSIBLE_SHOW_CUSTOM_STATS", "ANSIBLE_SHOW_TASK_PATH_ON_FAILURE",
	"ANSIBLE_SSH_RETRIES", "ANSIBLE_STRING_CONVERSION_ACTION", "ANSIBLE_SYSTEM_WARNINGS", "ANSIBLE_TASK_TIMEOUT",
	"ANSIBLE_TIMEOUT", "ANSIBLE_TRANSFORM_INVALID_GROUP_CHARS", "ANSIBLE_VERBOSITY",
}

// jobEnvDeniedNames lists variables (compared in upper case) that make a
// program load code, or choose which program or configuration runs.
var jobEnvDeniedNames = []struct {
	why   string
	names []string
}{
	{"it chooses the programs that run", []string{"PATH", "SHELL"}},
	{"it chooses configuration that runs programs (~/.ansible.cfg, ~/.ssh/config, ~/.ansible/plugins, ...)",
		[]string{"HOME", "XDG_CONFIG_HOME", "XDG_CONFIG_DIRS", "XDG_DATA_HOME", "XDG_DATA_DIRS", "CURL_HOME", "WGETRC"}},
	{"a shell runs the file it names", []string{"ENV", "BASH_ENV", "ZDOTDIR", "PROMPT_COMMAND"}},
	{"it changes how shells run", []string{"SHELLOPTS", "BASHOPTS", "IFS", "CDPATH", "PS4"}},
	{"the C library loads code or files from it", []string{"GCONV_PATH", "GLIBC_TUNABLES", "LOCPATH", "NLSPATH",
		"HOSTALIASES", "RESOLV_HOST_CONF"}},
	{"Java loads code it names", []string{"CLASSPATH", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS"}},
	{"OpenSSL or Kerberos load code it names", []string{"OPENSSL_CONF", "OPENSSL_ENGINES", "OPENSSL_MODULES", "KRB5_CONFIG"}},
	{"it hands the job another ssh-agent", []string{"SSH_AUTH_SOCK"}},
	{"programs run the program it names", []string{"SSH_ASKPASS", "SSH_ASKPASS_REQUIRE", "SUDO_ASKPASS", "PAGER",
		"MANPAGER", "EDITOR", "VISUAL", "BROWSER", "LESSOPEN", "LESSCLOSE"}},
	{"it chooses ansible-runner's callback plugins", []string{"AWX_LIB_DIRECTORY"}},
}

// jobEnvDeniedPrefixes are families of such variables.
var jobEnvDeniedPrefixes = []struct{ prefix, why string }{
	{"LD_", "the dynamic loader loads code it names"}, {"DYLD_", "the dynamic loader loads code it names"},
	{"MALLOC_", "it changes the C library"}, {"PYTHON", "Python (Ansible itself) loads code or changes how it runs"},
	{"PERL", "Perl loads code it names"}, {"RUBY", "Ruby loads code it names"}, {"GEM_", "Ruby loads code from it"},
	{"NODE_", "Node.js loads code it names"}, {"LUA_", "Lua loads code it names"},
	{"BASH_FUNC_", "bash runs it as a function"}, {"GIT_", "it changes which programs and configuration git runs"},
	{"PIP_", "it changes what pip installs"}, {"NPM_CONFIG_", "it changes what npm installs and runs"},
}

// jobEnvDenied returns why an untrusted job may not set name, or "".
func jobEnvDenied(name string) string {
	up := strings.ToUpper(name)
	if strings.HasPrefix(up, "ANSIBLE_") {
		if slices.Contains(jobAnsibleEnvAllowed, name) {
			return ""
		}
		return "it is not among the Ansible settings a stream may set (those that only change output and " +
			"play behaviour, such as ANSIBLE_NOCOLOR, ANSIBLE_GATHERING, ANSIBLE_TIMEOUT); settings that load code, " +
			"name files or programs, or choose connections or privileges are the operator's"
	}
	for _, g := range jobEnvDeniedNames {
		if slices.Contains(g.names, up) {
			return g.why
		}
	}
	for _, p := range jobEnvDeniedPrefixes {
		if strings.HasPrefix(up, p.prefix) {
			return p.why
		}
	}
	return ""
}

// jobScratch is the directory in the private data directory that NewJob
// writes extra vars files to. It is hidden: no playbook, inventory or
// roles path can name it.
const jobScratch = ".ansible-worker"

// extraVars decides the -e @FILE arguments. Trusted: env/extravars itself,
// as ansible-runner passes it. Untrusted: a copy with every string marked
// !unsafe, after the names are checked. kwargs extravars: a file of their
// own (ansible-runner puts them on the command line as JSON).
func (b *jobBuilder) extraVars() error {
	scratch := filepath.Join(b.pdd.Dir, jobScratch)
	if b.pdd.ExtraVars != nil {
		if b.o.Trusted {
			b.fileVars.path = filepath.Join(b.pdd.Dir, "env", "extravars")
		} else if err := b.encodeVars(&b.fileVars, "env/extravars", b.pdd.ExtraVars,
			filepath.Join(scratch, "extravars.yml")); err != nil {
			return err
		}
	}
	if len(b.kw.ExtraVars) == 0 {
		return nil
	}
	if b.o.Trusted {
		data, err := json.Marshal(b.kw.ExtraVars)
		if err != nil {
			return fmt.Errorf("kwargs: extravars: %w", err)
		}
		b.kwVars = jobVarsFile{path: filepath.Join(scratch, "kwargs-extravars.json"), data: data}
		return nil
	}
	return b.encodeVars(&b.kwVars, "kwargs extravars", b.kw.ExtraVars, filepath.Join(scratch, "kwargs-extravars.yml"))
}

func (b *jobBuilder) encodeVars(f *jobVarsFile, where string, vars map[string]any, path string) error {
	if err := jobCheckVarNames(vars); err != nil {
		return jobRefuse(where, "", "%v", err)
	}
	data, err := worker.EncodeExtraVars(vars)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	*f = jobVarsFile{path: path, data: data}
	return nil
}

// jobCheckVarNames refuses top-level extra var names that are not
// variable names, or that only the operator may set.
func jobCheckVarNames(vars map[string]any) error {
	var bad, reserved []string
	for _, k := range jobSortedKeys(vars) {
		switch {
		case !schemas.ValidVarName(k):
			bad = append(bad, fmt.Sprintf("%q", pddClip(k)))
		case worker.ReservedVarName(k):
			reserved = append(reserved, fmt.Sprintf("%q", k))
		}
	}
	switch {
	case len(bad) > 0:
		return fmt.Errorf("%s: not a variable name (letters, digits and _, not starting with a digit)", jobFirst(bad))
	case len(reserved) > 0:
		return fmt.Errorf("%s may not be set from an untrusted stream: names starting with ansible_ "+
			"(connection, interpreter and privilege settings) and names Ansible reserves are the operator's", jobFirst(reserved))
	}
	return nil
}

// jobFirst joins up to three names.
func jobFirst(names []string) string {
	if len(names) > 3 {
		names = append(names[:3:3], "…")
	}
	return strings.Join(names, ", ")
}

// args builds ansible-playbook's arguments in ansible-runner's order.
func (b *jobBuilder) args() error {
	args, err := b.cmdline()
	if err != nil {
		return err
	}
	for _, inv := range b.invs {
		args = append(args, "-i", inv)
	}
	if b.kw.Limit != "" {
		if err := b.checkValue("limit", b.kw.Limit, jobCheckLimit); err != nil {
			return err
		}
		args = append(args, "--limit", b.kw.Limit)
	}
	for _, f := range []jobVarsFile{b.fileVars, b.kwVars} {
		if f.path != "" {
			args = append(args, "-e", "@"+f.path)
		}
	}
	more, err := b.optionArgs()
	if err != nil {
		return err
	}
	b.job.Args = append(append(args, more...), b.job.Playbook)
	return nil
}

// optionArgs are -v…, --tags, --skip-tags and --forks from kwargs.
func (b *jobBuilder) optionArgs() ([]string, error) {
	var args []string
	if v := b.kw.Verbosity; v != nil && *v != 0 {
		if *v < 0 || (!b.o.Trusted && *v > 6) {
			return nil, jobRefuse("kwargs", "verbosity", "must be 0 to 6")
		}
		args = append(args, "-"+strings.Repeat("v", *v))
	}
	for _, t := range []struct{ name, opt, v string }{{"tags", "--tags", b.kw.Tags}, {"skip_tags", "--skip-tags", b.kw.SkipTags}} {
		if t.v == "" {
			continue
		}
		if err := b.checkValue(t.name, t.v, jobCheckTags); err != nil {
			return nil, err
		}
		args = append(args, t.opt, t.v)
	}
	if f := b.kw.Forks; f != nil && *f != 0 {
		n, err := jobCheckForks(b.o, strconv.Itoa(*f))
		if err != nil {
			return nil, jobRefuse("kwargs", "forks", "%v", err)
		}
		args = append(args, "--forks", n)
	}
	return args, nil
}

// checkValue applies an option's check to a kwargs value, unless trusted.
func (b *jobBuilder) checkValue(name, v string, check func(JobOptions, string) (string, error)) error {
	if b.o.Trusted {
		if strings.ContainsRune(v, 0) {
			return jobRefuse("kwargs", name, "contains a NUL character")
		}
		return nil
	}
	if _, err := check(b.o, v); err != nil {
		return jobRefuse("kwargs", name, "%v", err)
	}
	return nil
}

// cmdline returns the cmdline options: the kwarg, else env/cmdline;
// checked unless trusted.
func (b *jobBuilder) cmdline() ([]string, error) {
	where, words := "env/cmdline", b.pdd.Cmdline
	if b.kw.Cmdline != "" {
		where = "kwargs cmdline"
		var err error
		if words, err = pddShlexSplit(b.kw.Cmdline); err != nil {
			return nil, jobRefuse(where, "", "%v", err)
		}
	}
	if !b.o.Trusted {
		return jobCheckCmdline(where, words, b.o)
	}
	for i, w := range words {
		if strings.ContainsRune(w, 0) {
			return nil, jobRefuse(where, fmt.Sprintf("argument %d", i+1), "contains a NUL character")
		}
	}
	return append([]string{}, words...), nil
}

// files creates the artifact directory empty and writes the extra vars
// files. Whatever the stream brought at those places (a symlink, a file,
// earlier artifacts) is removed first, so nothing is written through it.
func (b *jobBuilder) files() error {
	arts := filepath.Join(b.pdd.Dir, "artifacts")
	if fi, err := os.Lstat(arts); err != nil || !fi.IsDir() {
		if err := os.RemoveAll(arts); err != nil {
			return fmt.Errorf("artifact directory: %w", err)
		}
		if err := os.Mkdir(arts, 0o700); err != nil {
			return fmt.Errorf("artifact directory: %w", err)
		}
	}
	if err := jobFreshDir(b.job.ArtifactDir); err != nil {
		return fmt.Errorf("artifact directory: %w", err)
	}
	if b.fileVars.data == nil && b.kwVars.data == nil {
		return nil
	}
	if err := jobFreshDir(filepath.Join(b.pdd.Dir, jobScratch)); err != nil {
		return fmt.Errorf("extra vars: %w", err)
	}
	for _, f := range []jobVarsFile{b.fileVars, b.kwVars} {
		if f.data == nil {
			continue
		}
		if err := jobWriteNew(f.path, f.data); err != nil {
			return fmt.Errorf("extra vars: %w", err)
		}
		b.job.ExtraVarsFiles = append(b.job.ExtraVarsFiles, f.path)
	}
	return nil
}

// jobFreshDir replaces whatever is at dir with an empty directory (0700).
func jobFreshDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.Mkdir(dir, 0o700)
}

// jobWriteNew writes a new file (0600); it never follows a symlink.
func jobWriteNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// jobOpt is an ansible-playbook option an untrusted cmdline may use. check
// is nil for a flag; else it checks the value and returns it as it goes to
// ansible-playbook.
type jobOpt struct {
	long, short string
	check       func(JobOptions, string) (string, error)
}

// jobCmdlineOpts are the options an untrusted cmdline may use: they pick
// hosts, tags and tasks of the play, how much is shown and whether
// anything changes. Every other option of ansible-playbook loads files or
// code (-i, -M, --vault-*, --*-password-file, @FILE), chooses the
// connection or privileges (-u, -c, -b, --become-*, --private-key,
// --ssh-*-args), prompts (-k, -K, --step, --ask-*) or names another
// playbook (positional arguments).
var jobCmdlineOpts = []jobOpt{
	{long: "--check", short: "-C"}, {long: "--diff", short: "-D"}, {long: "--verbose", short: "-v"},
	{long: "--list-hosts"}, {long: "--list-tasks"}, {long: "--list-tags"}, {long: "--syntax-check"},
	{long: "--flush-cache"}, {long: "--force-handlers"},
	{long: "--limit", short: "-l", check: jobCheckLimit}, {long: "--tags", short: "-t", check: jobCheckTags},
	{long: "--skip-tags", check: jobCheckTags}, {long: "--forks", short: "-f", check: jobCheckForks},
	{long: "--extra-vars", short: "-e", check: jobCheckExtraVars},
	{long: "--start-at-task", check: jobCheckText},
}

// jobAllowedOpts lists jobCmdlineOpts for error messages.
func jobAllowedOpts() string {
	var names []string
	for _, o := range jobCmdlineOpts {
		if o.short != "" {
			names = append(names, o.short+"/"+o.long)
		} else {
			names = append(names, o.long)
		}
	}
	return strings.Join(names, ", ")
}

func jobLookupOpt(name string) (jobOpt, bool) {
	for _, o := range jobCmdlineOpts {
		if name == o.long || (o.short != "" && name == o.short) {
			return o, true
		}
	}
	return jobOpt{}, false
}

// jobCheckCmdline checks cmdline words for an untrusted job, as
// ansible-playbook's argparse would read them, and returns them with
// every option value as one element after its option. Errors name the
// option, never its value.
func jobCheckCmdline(where string, words []string, o JobOptions) ([]string, error) {
	var out []string
	for i := 0; i < len(words); i++ {
		w := words[i]
		var opts []string
		var err error
		switch {
		case strings.ContainsRune(w, 0):
			return nil, jobRefuse(where, fmt.Sprintf("argument %d", i+1), "contains a NUL character")
		case w == "--":
			return nil, jobRefuse(where, "--", "not allowed: cmdline holds options only")
		case !strings.HasPrefix(w, "-") || w == "-":
			return nil, jobRefuse(where, fmt.Sprintf("argument %d", i+1), "is not an option: the playbook "+
				"comes from the playbook kwarg, and cmdline may hold only the options %s", jobAllowedOpts())
		case strings.HasPrefix(w, "--"):
			opts, i, err = jobLongOpt(words, i, o)
		default:
			opts, i, err = jobShortOpt(words, i, o)
		}
		if err != nil {
			return nil, jobRefuseOpt(where, err)
		}
		out = append(out, opts...)
	}
	return out, nil
}

// jobOptError is a refused option: its name and why.
type jobOptError struct{ name, why string }

func (e *jobOptError) Error() string { return e.name + ": " + e.why }

func jobRefuseOpt(where string, err error) error {
	var oe *jobOptError
	if errors.As(err, &oe) {
		return jobRefuse(where, oe.name, "%s", oe.why)
	}
	return jobRefuse(where, "", "%v", err)
}

func jobNotAllowed(name string) error {
	return &jobOptError{name, "not allowed from an untrusted stream (allowed: " + jobAllowedOpts() + ")"}
}

// jobLongOpt reads --name, --name=value or --name value. Abbreviations,
// which argparse would take, are refused.
func jobLongOpt(words []string, i int, o JobOptions) ([]string, int, error) {
	name, val, hasVal := strings.Cut(words[i], "=")
	opt, ok := jobLookupOpt(name)
	if !ok {
		return nil, i, jobNotAllowed(name)
	}
	if opt.check == nil {
		if hasVal {
			return nil, i, &jobOptError{name, "takes no value"}
		}
		return []string{name}, i, nil
	}
	return jobOptValue(words, i, name, val, hasVal, opt, o)
}

// jobOptValue checks the value of option name: val when it came with the
// word (hasVal), else the next word.
func jobOptValue(words []string, i int, name, val string, hasVal bool, opt jobOpt, o JobOptions) ([]string, int, error) {
	if !hasVal {
		if i+1 >= len(words) {
			return nil, i, &jobOptError{name, "needs a value"}
		}
		i++
		val = words[i]
	}
	v, err := opt.check(o, val)
	if err != nil {
		return nil, i, &jobOptError{name, err.Error()}
	}
	return []string{name, v}, i, nil
}

// jobShortOpt reads -X, -Xvalue, -X=value, -X value for a value option
// alone, and runs of flags (-vvv, -CD).
func jobShortOpt(words []string, i int, o JobOptions) ([]string, int, error) {
	w := words[i]
	if strings.Trim(w[1:], "v") == "" {
		return []string{w}, i, nil
	}
	r, _ := utf8.DecodeRuneInString(w[1:])
	first := string(r)
	opt, ok := jobLookupOpt("-" + first)
	if !ok {
		return nil, i, jobNotAllowed("-" + first)
	}
	if opt.check == nil {
		out, err := jobFlagRun(w)
		return out, i, err
	}
	name, val := "-"+first, w[1+len(first):]
	return jobOptValue(words, i, name, strings.TrimPrefix(val, "="), w != name, opt, o)
}

// jobFlagRun splits a run of single-letter flags, -CDv, into -C -D -v.
func jobFlagRun(w string) ([]string, error) {
	var out []string
	for _, r := range w[1:] {
		name := "-" + string(r)
		opt, ok := jobLookupOpt(name)
		switch {
		case !ok:
			return nil, jobNotAllowed(name)
		case opt.check != nil:
			return nil, &jobOptError{name, "must stand alone, not after other flags in one argument"}
		}
		out = append(out, name)
	}
	return out, nil
}

// jobCheckText refuses what would not stay one plain value: nothing, a
// leading '-' (argparse would take it as an option), NUL and line breaks.
func jobCheckText(_ JobOptions, v string) (string, error) {
	switch {
	case v == "":
		return "", errors.New("needs a value")
	case strings.HasPrefix(v, "-"):
		return "", errors.New("the value starts with '-'")
	case strings.ContainsAny(v, "\x00\r\n"):
		return "", errors.New("the value contains a NUL character or a line break")
	case len(v) > schemas.MaxPathLength:
		return "", fmt.Errorf("the value is longer than %d characters", schemas.MaxPathLength)
	}
	return v, nil
}

// jobCheckLimit checks a host pattern: @FILE makes Ansible read FILE (and
// print its lines); ~regex can take a CPU for minutes.
func jobCheckLimit(o JobOptions, v string) (string, error) {
	if len(v) > schemas.MaxLimitLength {
		return "", fmt.Errorf("the pattern is longer than %d characters", schemas.MaxLimitLength)
	}
	if _, err := jobCheckText(o, v); err != nil {
		return "", err
	}
	switch {
	case strings.Contains(v, "@"):
		return "", errors.New("a host pattern must not contain '@' (Ansible reads @FILE as a file of host names)")
	case strings.Contains(v, "~") && !o.AllowLimitRegex:
		return "", errors.New("regular expression host patterns (~) are off for untrusted streams")
	}
	return v, nil
}

// jobCheckTags checks a comma-separated list of tags.
func jobCheckTags(o JobOptions, v string) (string, error) {
	if _, err := jobCheckText(o, v); err != nil {
		return "", err
	}
	if strings.Contains(v, "@") {
		return "", errors.New("tags must not contain '@'")
	}
	return v, nil
}

// jobCheckForks checks a number of forks against o.MaxForks.
func jobCheckForks(o JobOptions, v string) (string, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || strings.HasPrefix(v, "+") {
		return "", errors.New("must be a whole number from 1")
	}
	max := o.MaxForks
	if max <= 0 && !o.Trusted {
		max = worker.DefaultMaxForks
	}
	if max > 0 && n > max {
		return "", fmt.Errorf("%d is more than the worker allows (%d)", n, max)
	}
	return strconv.Itoa(n), nil
}

// jobCheckExtraVars reads a -e value as Ansible does (a JSON or YAML
// mapping when it starts with { or [, else key=value words), checks the
// names and returns the mapping as one line of YAML with every string
// tagged !unsafe. @FILE is refused: files are the operator's.
func jobCheckExtraVars(_ JobOptions, v string) (string, error) {
	var m map[string]any
	var err error
	switch {
	case v == "":
		return "", errors.New("needs a value")
	case v[0] == '@':
		return "", errors.New("@FILE is not allowed from an untrusted stream: give the values inline or in env/extravars")
	case v[0] == '/' || v[0] == '.' || v[0] == '-':
		return "", errors.New("give key=value words or a JSON/YAML mapping")
	case v[0] == '{' || v[0] == '[':
		if m, err = pddParseMapping([]byte(v)); err != nil {
			return "", fmt.Errorf("the value is not a JSON or YAML mapping: %w", err)
		}
	default:
		if m, err = jobParseKV(v); err != nil {
			return "", err
		}
	}
	if err := jobCheckVarNames(m); err != nil {
		return "", err
	}
	out, err := worker.EncodeExtraVarsLine(m)
	return string(out), err
}

// jobParseKV reads key=value words separated by spaces, as Ansible's
// parse_kv does for the simple cases it allows; quotes, backslashes,
// other blanks and template blocks, which parse_kv reads in ways of its
// own, are refused.
func jobParseKV(v string) (map[string]any, error) {
	if strings.ContainsAny(v, "'\"\\\t\r\n\v\f\x00") ||
		strings.Contains(v, "{{") || strings.Contains(v, "{%") || strings.Contains(v, "{#") ||
		strings.Contains(v, "}}") || strings.Contains(v, "%}") || strings.Contains(v, "#}") {
		return nil, errors.New("key=value words may not hold quotes, backslashes, tabs, line breaks or " +
			"template markers: give such values as a JSON mapping")
	}
	m := map[string]any{}
	for _, word := range strings.Split(v, " ") {
		if word == "" {
			continue
		}
		k, val, ok := strings.Cut(word, "=")
		if !ok {
			return nil, errors.New("each word must be key=value")
		}
		m[k] = val
	}
	return m, nil
}
