//go:build unix

package runnerstream

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// jobRunnerCommand is artifacts/<ident>/command as ansible-runner writes
// it.
type jobRunnerCommand struct {
	Command []string          `json:"command"`
	Cwd     string            `json:"cwd"`
	Env     map[string]string `json:"env"`
}

// jobAnsibleRunner returns the path of ansible-runner, which the test
// set-up installs (scripts/deps.sh).
func jobAnsibleRunner(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("ansible-runner")
	require.NoError(t, err, "ansible-runner is part of the test set-up (scripts/deps.sh)")
	return p
}

// jobFlags replaces {pdd} in flags.
func jobFlags(flags []string, dir string) []string {
	out := make([]string, len(flags))
	for i, f := range flags {
		out[i] = strings.ReplaceAll(f, "{pdd}", dir)
	}
	return out
}

// jobRunnerRun runs `ansible-runner run` on a copy of the testdata
// directory and returns the command it ran, paths under the directory
// written PDD.
func jobRunnerRun(t *testing.T, runner, name string, flags []string) jobRunnerCommand {
	dir := pddCopy(t, name)
	args := append([]string{"run", dir, "-p", "test.yml", "--ident", "x"}, jobFlags(flags, dir)...)
	out, err := exec.Command(runner, args...).CombinedOutput()
	var ee *exec.ExitError
	require.True(t, err == nil || errors.As(err, &ee), "%v: %s", err, out)
	b, err := os.ReadFile(filepath.Join(dir, "artifacts", "x", "command"))
	require.NoError(t, err, "ansible-runner run: %s", out)
	var c jobRunnerCommand
	require.NoError(t, json.Unmarshal(bytes.ReplaceAll(b, []byte(dir), []byte("PDD")), &c))
	return c
}

// jobRunnerTransmit runs `ansible-runner transmit` on a copy of the
// testdata directory and returns the kwargs it sent and the directory as
// transmit left it (it writes --cmdline to env/cmdline).
func jobRunnerTransmit(t *testing.T, runner, name string, flags []string) (Kwargs, string) {
	dir := pddCopy(t, name)
	args := append([]string{"transmit", dir, "-p", "test.yml", "--ident", "x"}, jobFlags(flags, dir)...)
	out, err := exec.Command(runner, args...).Output()
	require.NoError(t, err)
	line, err := bufio.NewReader(bytes.NewReader(out)).ReadBytes('\n')
	require.NoError(t, err)
	var first struct {
		Kwargs Kwargs `json:"kwargs"`
	}
	require.NoError(t, json.Unmarshal(line, &first), "%s", line)
	return first.Kwargs, dir
}

// TestJobArgvMatchesAnsibleRunner runs the real ansible-runner 2.3.1 on
// private data directories and checks that NewJob, given the kwargs its
// transmit writes for the same flags, builds the same ansible-playbook
// command, working directory and environment. Deliberate differences,
// undone here before comparing: without Trusted, env/extravars reaches
// Ansible through NewJob's copy of it (strings tagged !unsafe), and a
// cmdline -e value is rewritten as a YAML mapping.
func TestJobArgvMatchesAnsibleRunner(t *testing.T) {
	runner := jobAnsibleRunner(t)
	for _, tc := range []struct {
		name, dir string
		flags     []string
	}{
		{"basic", "basic", nil},
		{"yaml files, limit, forks, verbosity", "full", []string{"--limit", "localhost", "--forks", "3", "-vv"}},
		{"json files, inventory, cmdline -e", "json", []string{"--inventory", "{pdd}/inventory/other.ini", "--forks", "5"}},
		{"no inventory, cmdline kwarg", "noinv", []string{"--cmdline", "--check --list-tasks -v"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want := jobRunnerRun(t, runner, tc.dir, tc.flags)
			kw, sent := jobRunnerTransmit(t, runner, tc.dir, tc.flags)
			for _, trusted := range []bool{true, false} {
				dir := filepath.Join(t.TempDir(), "pdd")
				require.NoError(t, os.CopyFS(dir, os.DirFS(sent)))
				pdd, err := LoadPrivateDataDir(dir)
				require.NoError(t, err)
				job, err := NewJob(kw, pdd, JobOptions{Trusted: trusted})
				require.NoError(t, err)
				got := jobNormalize(t, job, pdd)
				require.Equal(t, want.Command, got.Command, "trusted=%v", trusted)
				require.Equal(t, want.Cwd, got.Cwd)
				for k, v := range got.Env {
					require.Equal(t, want.Env[k], v, "trusted=%v: %s", trusted, k)
				}
			}
		})
	}
}

// jobNormalize returns the command of job as ansible-runner would write
// it, the deliberate differences undone.
func jobNormalize(t *testing.T, job *Job, pdd *PrivateDataDir) jobRunnerCommand {
	pdir := func(s string) string { return strings.ReplaceAll(s, job.Dir, "PDD") }
	cmd := []string{"ansible-playbook"}
	for i := 0; i < len(job.Args); i++ {
		a := job.Args[i]
		if a == "-e" && i+1 < len(job.Args) {
			cmd = append(cmd, a, jobUndoExtraVars(t, job, pdd, job.Args[i+1]))
			i++
			continue
		}
		cmd = append(cmd, pdir(a))
	}
	env := map[string]string{}
	for k, v := range job.Env {
		env[k] = pdir(v)
	}
	return jobRunnerCommand{Command: cmd, Cwd: pdir(job.ProjectDir), Env: env}
}

// jobUndoExtraVars maps NewJob's -e value back to what ansible-runner
// passes, after checking that it holds the same.
func jobUndoExtraVars(t *testing.T, job *Job, pdd *PrivateDataDir, v string) string {
	if len(job.ExtraVarsFiles) > 0 && v == "@"+job.ExtraVarsFiles[0] {
		b, err := os.ReadFile(job.ExtraVarsFiles[0])
		require.NoError(t, err)
		m, err := pddParseMapping(b)
		require.NoError(t, err)
		require.Equal(t, pdd.ExtraVars, m, "the copy holds env/extravars")
		return "@PDD/env/extravars"
	}
	if strings.HasPrefix(v, "@") {
		return strings.ReplaceAll(v, job.Dir, "PDD")
	}
	// A cmdline -e: find the original among env/cmdline's values.
	for i, w := range pdd.Cmdline {
		if i > 0 && pdd.Cmdline[i-1] == "-e" {
			if enc, err := jobCheckExtraVars(JobOptions{}, w); err == nil && (enc == v || w == v) {
				return w
			}
		}
	}
	t.Fatalf("-e %s is not from env/cmdline", v)
	return ""
}

func TestJobBasic(t *testing.T) {
	dir := pddCopy(t, "full")
	pdd, err := LoadPrivateDataDir(dir)
	require.NoError(t, err)
	forks := 3
	job, err := NewJob(Kwargs{Ident: "run-1", Playbook: "test.yml", Limit: "localhost", Forks: &forks}, pdd, JobOptions{})
	require.NoError(t, err)
	art := filepath.Join(dir, "artifacts", "run-1")
	vars := filepath.Join(dir, ".ansible-worker", "extravars.yml")
	require.Equal(t, &Job{Ident: "run-1", Dir: dir, ProjectDir: filepath.Join(dir, "project"), Playbook: "test.yml",
		Args: []string{"--tags", "demo,hello", "--skip-tags", "never", "-D", "--check",
			"-i", filepath.Join(dir, "inventory"), "--limit", "localhost", "-e", "@" + vars, "--forks", "3", "test.yml"},
		Env: map[string]string{"ANSIBLE_NOCOWS": "True", "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "False", "MY_MODE": "493",
			"MY_RATIO": "1500.0", "MY_TEXT": "hello world", "MY_EMPTY": "None", "ANSIBLE_RETRY_FILES_ENABLED": "False",
			"ANSIBLE_HOST_KEY_CHECKING": "False", "AWX_ISOLATED_DATA_DIR": art, "ANSIBLE_CACHE_PLUGIN": "jsonfile",
			"ANSIBLE_CACHE_PLUGIN_CONNECTION": filepath.Join(art, "facts")},
		Timeout: 300 * time.Second, IdleTimeout: 60500 * time.Millisecond, ArtifactDir: art,
		ExtraVarsFiles: []string{vars}, SuppressOutputFile: true}, job)
	fi, err := os.Stat(art)
	require.NoError(t, err)
	require.True(t, fi.IsDir())
	fi, err = os.Stat(vars)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	b, err := os.ReadFile(vars)
	require.NoError(t, err)
	require.Contains(t, string(b), `!unsafe "{{ lookup('pipe', 'id') }}"`)
}

func TestJobDefaults(t *testing.T) {
	pdd, err := LoadPrivateDataDir(pddCopy(t, "noinv"))
	require.NoError(t, err)
	require.NoError(t, os.RemoveAll(filepath.Join(pdd.Dir, "project")))
	pddWrite(t, pdd.Dir, map[string]string{"play.yml": "- hosts: all\n"})
	t.Setenv("ANSIBLE_HOST_KEY_CHECKING", "True")
	job, err := NewJob(Kwargs{Playbook: "play.yml", FactCacheType: "memory"}, pdd,
		JobOptions{MaxTimeout: time.Minute})
	require.NoError(t, err)
	require.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, job.Ident)
	require.Equal(t, pdd.Dir, job.ProjectDir, "without project/, the private data directory is the working directory")
	require.Equal(t, []string{"--diff", "play.yml"}, job.Args)
	require.Equal(t, time.Minute, job.Timeout, "MaxTimeout bounds a job without a timeout")
	require.NotContains(t, job.Env, "ANSIBLE_HOST_KEY_CHECKING", "the worker's own setting stays")
	require.NotContains(t, job.Env, "ANSIBLE_CACHE_PLUGIN")
}

func TestJobKwargsExtras(t *testing.T) {
	dir := pddCopy(t, "basic")
	pddWrite(t, dir, map[string]string{"roles/web/tasks/main.yml": "- debug: msg=x\n", "project/other.yml": "- hosts: all\n"})
	pdd, err := LoadPrivateDataDir(dir)
	require.NoError(t, err)
	v, timeout := 2, 30
	kw := Kwargs{Playbook: "other.yml", Inventory: []any{"inventory/hosts", "inventory"}, Verbosity: &v,
		Tags: "a", SkipTags: "b", Timeout: &timeout, EnvVars: map[string]any{"ANSIBLE_ROLES_PATH": "."},
		ExtraVars: map[string]any{"who": "{{ lookup('env', 'HOME') }}"}, Cmdline: "--syntax-check",
		OmitEventData: true}
	job, err := NewJob(kw, pdd, JobOptions{})
	require.NoError(t, err)
	kwVars := filepath.Join(dir, ".ansible-worker", "kwargs-extravars.yml")
	require.Equal(t, []string{"--syntax-check", "-i", filepath.Join(dir, "inventory", "hosts"),
		"-i", filepath.Join(dir, "inventory"), "-e", "@" + kwVars, "-vv", "--tags", "a", "--skip-tags", "b",
		"other.yml"}, job.Args)
	require.Equal(t, filepath.Join(dir, "roles"), job.Env["ANSIBLE_ROLES_PATH"], "kwargs roles path is joined onto roles/")
	require.Equal(t, 30*time.Second, job.Timeout)
	require.True(t, job.OmitEventData)
	b, err := os.ReadFile(kwVars)
	require.NoError(t, err)
	require.Equal(t, "\"who\": !unsafe \"{{ lookup('env', 'HOME') }}\"\n", string(b))

	job, err = NewJob(kw, pdd, JobOptions{Trusted: true})
	require.NoError(t, err)
	b, err = os.ReadFile(filepath.Join(dir, ".ansible-worker", "kwargs-extravars.json"))
	require.NoError(t, err)
	require.JSONEq(t, `{"who": "{{ lookup('env', 'HOME') }}"}`, string(b), "trusted: as ansible-runner passes it")
	require.Equal(t, []string{filepath.Join(dir, ".ansible-worker", "kwargs-extravars.json")}, job.ExtraVarsFiles)
}

// TestJobArtifactDirFresh checks that what a stream ships at the
// artifact directory is not written through.
func TestJobArtifactDirFresh(t *testing.T) {
	outside := t.TempDir()
	dir := pddCopy(t, "full")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "artifacts", "x"), 0o700))
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "artifacts", "x", "facts")))
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, ".ansible-worker")))
	pdd, err := LoadPrivateDataDir(dir)
	require.NoError(t, err)
	job, err := NewJob(Kwargs{Ident: "x", Playbook: "test.yml"}, pdd, JobOptions{})
	require.NoError(t, err)
	entries, err := os.ReadDir(job.ArtifactDir)
	require.NoError(t, err)
	require.Empty(t, entries)
	entries, err = os.ReadDir(outside)
	require.NoError(t, err)
	require.Empty(t, entries, "nothing was written through the symlinks")
	fi, err := os.Lstat(filepath.Join(dir, ".ansible-worker"))
	require.NoError(t, err)
	require.True(t, fi.IsDir())

	dir = pddCopy(t, "basic")
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "artifacts")))
	pdd, err = LoadPrivateDataDir(dir)
	require.NoError(t, err)
	job, err = NewJob(Kwargs{Ident: "x", Playbook: "test.yml"}, pdd, JobOptions{})
	require.NoError(t, err)
	fi, err = os.Lstat(filepath.Join(dir, "artifacts"))
	require.NoError(t, err)
	require.True(t, fi.IsDir(), "a symlinked artifacts/ is replaced")
	require.DirExists(t, job.ArtifactDir)
	entries, err = os.ReadDir(outside)
	require.NoError(t, err)
	require.Empty(t, entries)
}

// jobCase is a job for the refusal tables: files written into a copy of
// testdata/pdd/basic, kwargs (playbook test.yml unless set) and options.
type jobCase struct {
	name    string
	files   map[string]string
	kw      Kwargs
	o       JobOptions
	setup   func(t *testing.T, dir string)
	wantErr []string // "" for none
}

func (tc jobCase) run(t *testing.T) (*Job, error) {
	t.Helper()
	dir := pddCopy(t, "basic")
	pddWrite(t, dir, tc.files)
	if tc.setup != nil {
		tc.setup(t, dir)
	}
	pdd, err := LoadPrivateDataDir(dir)
	if err != nil {
		return nil, err
	}
	if tc.kw.Playbook == "" {
		tc.kw.Playbook = "test.yml"
	}
	return NewJob(tc.kw, pdd, tc.o)
}

func jobInt(n int) *int { return &n }

func jobEnv(kv string) map[string]string { return map[string]string{"env/envvars": kv} }

func jobCmd(s string) map[string]string { return map[string]string{"env/cmdline": s} }

func jobSymlink(target, name string) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.RemoveAll(p))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
		require.NoError(t, os.Symlink(target, p))
	}
}

var jobRefusals = []jobCase{
	{name: "LD_PRELOAD", files: jobEnv("LD_PRELOAD: /tmp/x.so"), wantErr: []string{"env/envvars: LD_PRELOAD:", "dynamic loader"}},
	{name: "PYTHONPATH", files: jobEnv("PYTHONPATH: /tmp"), wantErr: []string{"env/envvars: PYTHONPATH:", "Python"}},
	{name: "PATH", files: jobEnv("PATH: /tmp"), wantErr: []string{"env/envvars: PATH:", "programs"}},
	{name: "HOME", files: jobEnv("HOME: /tmp"), wantErr: []string{"env/envvars: HOME:"}},
	{name: "BASH_ENV", files: jobEnv("BASH_ENV: /tmp/x"), wantErr: []string{"env/envvars: BASH_ENV:"}},
	{name: "lower case", files: jobEnv("ld_preload: x"), wantErr: []string{"env/envvars: ld_preload:"}},
	{name: "GIT_SSH_COMMAND", files: jobEnv("GIT_SSH_COMMAND: x"), wantErr: []string{"env/envvars: GIT_SSH_COMMAND:"}},
	{name: "SSH_AUTH_SOCK", files: jobEnv("SSH_AUTH_SOCK: /tmp/s"), wantErr: []string{"env/envvars: SSH_AUTH_SOCK:"}},
	{name: "callback plugins", files: jobEnv("ANSIBLE_CALLBACK_PLUGINS: /tmp"), wantErr: []string{"env/envvars: ANSIBLE_CALLBACK_PLUGINS:", "operator's"}},
	{name: "stdout callback", files: jobEnv("ANSIBLE_STDOUT_CALLBACK: x"), wantErr: []string{"ANSIBLE_STDOUT_CALLBACK:"}},
	{name: "callbacks enabled", files: jobEnv("ANSIBLE_CALLBACKS_ENABLED: x"), wantErr: []string{"ANSIBLE_CALLBACKS_ENABLED:"}},
	{name: "ansible config", files: jobEnv("ANSIBLE_CONFIG: /tmp/a.cfg"), wantErr: []string{"ANSIBLE_CONFIG:"}},
	{name: "library", files: jobEnv("ANSIBLE_LIBRARY: /tmp"), wantErr: []string{"ANSIBLE_LIBRARY:"}},
	{name: "collections", files: jobEnv("ANSIBLE_COLLECTIONS_PATH: /tmp"), wantErr: []string{"ANSIBLE_COLLECTIONS_PATH:"}},
	{name: "inventory enabled", files: jobEnv("ANSIBLE_INVENTORY_ENABLED: script"), wantErr: []string{"ANSIBLE_INVENTORY_ENABLED:"}},
	{name: "vault file", files: jobEnv("ANSIBLE_VAULT_PASSWORD_FILE: /x"), wantErr: []string{"ANSIBLE_VAULT_PASSWORD_FILE:"}},
	{name: "become exe", files: jobEnv("ANSIBLE_BECOME_EXE: /bin/sh"), wantErr: []string{"ANSIBLE_BECOME_EXE:"}},
	{name: "ssh executable", files: jobEnv("ANSIBLE_SSH_EXECUTABLE: /tmp/x"), wantErr: []string{"ANSIBLE_SSH_EXECUTABLE:"}},
	{name: "keep remote files", files: jobEnv("ANSIBLE_KEEP_REMOTE_FILES: 1"), wantErr: []string{"ANSIBLE_KEEP_REMOTE_FILES:"}},
	{name: "log path", files: jobEnv("ANSIBLE_LOG_PATH: /tmp/log"), wantErr: []string{"ANSIBLE_LOG_PATH:"}},
	{name: "worker mirror", files: jobEnv("ANSIBLE_WORKER_MIRROR: 1"), wantErr: []string{"ANSIBLE_WORKER_MIRROR:"}},
	{name: "roles path outside", files: jobEnv("ANSIBLE_ROLES_PATH: /etc"), wantErr: []string{"env/envvars: ANSIBLE_ROLES_PATH: entry 1"}},
	{name: "roles path escape", files: map[string]string{"env/envvars": "ANSIBLE_ROLES_PATH: ../roles:../../..", "roles/web/x": ""}, wantErr: []string{"ANSIBLE_ROLES_PATH: entry 2"}},
	{name: "kwargs envvars", kw: Kwargs{EnvVars: map[string]any{"NODE_OPTIONS": "--require x"}}, wantErr: []string{"kwargs envvars: NODE_OPTIONS:"}},
	{name: "kwargs roles_path", kw: Kwargs{RolesPath: []string{"/etc"}}, wantErr: []string{"kwargs: roles_path: entry 1"}},

	{name: "cmdline -i", files: jobCmd("-i /etc/ansible/hosts"), wantErr: []string{"env/cmdline: -i: not allowed", "--limit"}},
	{name: "cmdline --inventory=", files: jobCmd("--inventory=/x"), wantErr: []string{"env/cmdline: --inventory: not allowed"}},
	{name: "cmdline become", files: jobCmd("--become --become-user root"), wantErr: []string{"env/cmdline: --become: not allowed"}},
	{name: "cmdline -b", files: jobCmd("-Cb"), wantErr: []string{"env/cmdline: -b: not allowed"}},
	{name: "cmdline -e @", files: jobCmd("-e @/etc/passwd"), wantErr: []string{"env/cmdline: -e: @FILE is not allowed"}},
	{name: "cmdline -e@", files: jobCmd("-e@/etc/passwd"), wantErr: []string{"env/cmdline: -e: @FILE"}},
	{name: "cmdline --extra-vars=@", files: jobCmd("--extra-vars=@vars.yml"), wantErr: []string{"env/cmdline: --extra-vars: @FILE"}},
	{name: "cmdline -e file", files: jobCmd("-e ./vars.yml"), wantErr: []string{"env/cmdline: -e: give key=value"}},
	{name: "cmdline -e reserved", files: jobCmd("-e ansible_python_interpreter=/bin/sh"), wantErr: []string{"env/cmdline: -e:", `"ansible_python_interpreter" may not be set`}},
	{name: "cmdline -e reserved json", files: jobCmd(`-e '{"ansible_ssh_common_args": "-o ProxyCommand=x"}'`), wantErr: []string{`"ansible_ssh_common_args" may not be set`}},
	{name: "cmdline -e magic", files: jobCmd("--extra-vars inventory_hostname=evil"), wantErr: []string{"--extra-vars:", `"inventory_hostname"`}},
	{name: "cmdline -e quotes", files: jobCmd(`-e "a='b c'"`), wantErr: []string{"-e: key=value words may not hold quotes"}},
	{name: "cmdline -e list", files: jobCmd(`-e '[1]'`), wantErr: []string{"-e: the value is not a JSON or YAML mapping"}},
	{name: "cmdline -e raw", files: jobCmd(`-e word`), wantErr: []string{"-e: each word must be key=value"}},
	{name: "cmdline positional", files: jobCmd("other.yml"), wantErr: []string{"env/cmdline: argument 1: is not an option"}},
	{name: "cmdline --", files: jobCmd("-- x.yml"), wantErr: []string{"env/cmdline: --: not allowed"}},
	{name: "cmdline abbreviation", files: jobCmd("--lim web"), wantErr: []string{"env/cmdline: --lim: not allowed"}},
	{name: "cmdline value in a flag run", files: jobCmd("-Cl web"), wantErr: []string{"env/cmdline: -l: must stand alone"}},
	{name: "cmdline flag value", files: jobCmd("--check=yes"), wantErr: []string{"env/cmdline: --check: takes no value"}},
	{name: "cmdline missing value", files: jobCmd("--limit"), wantErr: []string{"env/cmdline: --limit: needs a value"}},
	{name: "cmdline value option", files: jobCmd("--limit --list-hosts"), wantErr: []string{"env/cmdline: --limit: the value starts with '-'"}},
	{name: "cmdline limit @", files: jobCmd("--limit @/proc/self/environ"), wantErr: []string{"env/cmdline: --limit: a host pattern must not contain '@'"}},
	{name: "cmdline limit list @", files: jobCmd("-l web,@hosts.txt"), wantErr: []string{"env/cmdline: -l: a host pattern must not contain '@'"}},
	{name: "cmdline tags @", files: jobCmd("-t @x"), wantErr: []string{"env/cmdline: -t: tags must not contain '@'"}},
	{name: "cmdline module path", files: jobCmd("-M /tmp/modules"), wantErr: []string{"env/cmdline: -M: not allowed"}},
	{name: "cmdline step", files: jobCmd("--step"), wantErr: []string{"env/cmdline: --step: not allowed"}},
	{name: "cmdline ask pass", files: jobCmd("-k"), wantErr: []string{"env/cmdline: -k: not allowed"}},
	{name: "cmdline vault", files: jobCmd("--vault-password-file=/x"), wantErr: []string{"env/cmdline: --vault-password-file: not allowed"}},
	{name: "cmdline ssh args", files: jobCmd("--ssh-common-args=-oProxyCommand=x"), wantErr: []string{"env/cmdline: --ssh-common-args: not allowed"}},
	{name: "cmdline connection", files: jobCmd("-c local"), wantErr: []string{"env/cmdline: -c: not allowed"}},
	{name: "cmdline forks", files: jobCmd("--forks 1000"), wantErr: []string{"env/cmdline: --forks: 1000 is more than the worker allows (50)"}},
	{name: "cmdline forks bound", files: jobCmd("-f9"), o: JobOptions{MaxForks: 8}, wantErr: []string{"env/cmdline: -f: 9 is more than the worker allows (8)"}},
	{name: "cmdline forks text", files: jobCmd("-f many"), wantErr: []string{"env/cmdline: -f: must be a whole number"}},
	{name: "cmdline kwarg", files: jobCmd("--check"), kw: Kwargs{Cmdline: "--become"}, wantErr: []string{"kwargs cmdline: --become: not allowed"}},
	{name: "cmdline kwarg quoting", kw: Kwargs{Cmdline: `-l "web`}, wantErr: []string{"kwargs cmdline: no closing quotation"}},

	{name: "limit @", kw: Kwargs{Limit: "@/etc/passwd"}, wantErr: []string{"kwargs: limit: a host pattern must not contain '@'"}},
	{name: "limit dash", kw: Kwargs{Limit: "-e@x"}, wantErr: []string{"kwargs: limit: the value starts with '-'"}},
	{name: "limit regex", kw: Kwargs{Limit: "~(a+)+$"}, wantErr: []string{"kwargs: limit: regular expression host patterns"}},
	{name: "tags @", kw: Kwargs{Tags: "a,@b"}, wantErr: []string{"kwargs: tags: tags must not contain '@'"}},
	{name: "forks", kw: Kwargs{Forks: jobInt(51)}, wantErr: []string{"kwargs: forks: 51 is more than the worker allows (50)"}},
	{name: "forks negative", kw: Kwargs{Forks: jobInt(-1)}, wantErr: []string{"kwargs: forks: must be a whole number from 1"}},
	{name: "verbosity", kw: Kwargs{Verbosity: jobInt(9)}, wantErr: []string{"kwargs: verbosity: must be 0 to 6"}},
	{name: "timeout bound", kw: Kwargs{Timeout: jobInt(3600)}, o: JobOptions{MaxTimeout: time.Minute}, wantErr: []string{"kwargs: timeout: 1h0m0s is more than the worker allows (1m0s)"}},
	{name: "job_timeout bound", files: map[string]string{"env/settings": "job_timeout: 120"}, o: JobOptions{MaxTimeout: time.Minute}, wantErr: []string{"env/settings: job_timeout: 2m0s is more than"}},

	{name: "playbook escape", kw: Kwargs{Playbook: "../../../etc/passwd"}, wantErr: []string{"kwargs: playbook:", "leads outside the project directory"}},
	{name: "playbook outside project", kw: Kwargs{Playbook: "../inventory/hosts"}, wantErr: []string{"kwargs: playbook:", "leads outside the project directory"}},
	{name: "playbook absolute", kw: Kwargs{Playbook: "/etc/passwd"}, wantErr: []string{"kwargs: playbook:", "must be relative"}},
	{name: "playbook symlink", kw: Kwargs{Playbook: "evil.yml"}, setup: jobSymlink("/etc/hostname", "project/evil.yml"), wantErr: []string{"kwargs: playbook:", "leads outside"}},
	{name: "playbook hidden", kw: Kwargs{Playbook: ".git/config"}, files: map[string]string{"project/.git/config": "x"}, wantErr: []string{"kwargs: playbook:", "hidden"}},
	{name: "playbook missing", kw: Kwargs{Playbook: "nope.yml"}, wantErr: []string{"kwargs: playbook:", "does not exist"}},
	{name: "playbook directory", kw: Kwargs{Playbook: "roles"}, files: map[string]string{"project/roles/x": "x"}, wantErr: []string{"kwargs: playbook:", "is not a file"}},
	{name: "playbook dash", kw: Kwargs{Playbook: "-i.yml"}, files: map[string]string{"project/-i.yml": "x"}, wantErr: []string{"kwargs: playbook:", "starts with '-'"}},
	{name: "no playbook", kw: Kwargs{Playbook: ""}, setup: func(t *testing.T, dir string) {}, wantErr: nil},
	{name: "project symlink", setup: jobSymlink("/etc", "project"), wantErr: []string{"private data directory: project_dir:", "leads outside"}},
	{name: "project_dir escape", kw: Kwargs{ProjectDir: "../.."}, wantErr: []string{"kwargs: project_dir:", "leads outside"}},
	{name: "inventory absolute", kw: Kwargs{Inventory: "/etc/ansible/hosts"}, wantErr: []string{"kwargs: inventory:", "must be relative"}},
	{name: "inventory escape", kw: Kwargs{Inventory: []any{"inventory/hosts", "../../../etc/hosts"}}, wantErr: []string{"kwargs: inventory:", "leads outside"}},
	{name: "inventory itself", kw: Kwargs{Inventory: "."}, wantErr: []string{"kwargs: inventory:", "the private data directory itself"}},
	{name: "inventory inline", kw: Kwargs{Inventory: map[string]any{"all": nil}}, wantErr: []string{"kwargs: inventory: an inventory given inline"}},
	{name: "inventory symlink", setup: jobSymlink("/etc", "inventory"), wantErr: []string{"private data directory: inventory:", "leads outside"}},
	{name: "inventory hidden", kw: Kwargs{Inventory: ".hosts"}, files: map[string]string{".hosts": "x"}, wantErr: []string{"kwargs: inventory:", "hidden"}},

	{name: "passwords", files: map[string]string{"env/passwords": `{"Password:": "x"}`}, wantErr: []string{"env/passwords: not supported: ansible-worker never answers prompts"}},
	{name: "kwargs passwords", kw: Kwargs{Passwords: json.RawMessage(`{"Password:": "x"}`)}, wantErr: []string{"kwargs: passwords: not supported"}},
	{name: "ssh key", files: map[string]string{"env/ssh_key": "-----BEGIN"}, wantErr: []string{"env/ssh_key: not supported: ansible-worker starts no ssh-agent"}},
	{name: "kwargs ssh key", kw: Kwargs{SSHKey: "-----BEGIN"}, wantErr: []string{"kwargs: ssh_key: not supported"}},
	{name: "raw args", files: map[string]string{"args": "sh -c id"}, wantErr: []string{"args: a raw command line is not supported"}},
	{name: "binary", kw: Kwargs{Binary: "/bin/sh"}, wantErr: []string{"kwargs: binary: not supported"}},
	{name: "module", kw: Kwargs{Module: "shell", ModuleArgs: "id"}, wantErr: []string{"kwargs: module: ad-hoc commands"}},
	{name: "process isolation", files: map[string]string{"env/settings": "process_isolation: true"}, wantErr: []string{"env/settings: process_isolation: not supported"}},
	{name: "kwargs process isolation", kw: Kwargs{ProcessIsolation: func() *bool { b := true; return &b }()}, wantErr: []string{"kwargs: process_isolation"}},
	{name: "directory isolation", kw: Kwargs{DirectoryIsolationBasePath: "/tmp"}, wantErr: []string{"kwargs: directory_isolation_base_path"}},
	{name: "artifact dir", kw: Kwargs{ArtifactDir: "/tmp/a"}, wantErr: []string{"kwargs: artifact_dir: not supported"}},
	{name: "ident", kw: Kwargs{Ident: "../../x"}, wantErr: []string{`kwargs: ident: "../../x" must be`}},
	{name: "fact cache", files: map[string]string{"env/settings": "fact_cache: ../../x"}, wantErr: []string{"env/settings: fact_cache:", "inside the artifact directory"}},
	{name: "kwargs fact cache", kw: Kwargs{FactCache: "/tmp/x"}, wantErr: []string{"kwargs: fact_cache:"}},
	{name: "extravars reserved", files: map[string]string{"env/extravars": "ansible_become_password: x\nok: 1\n"}, wantErr: []string{`env/extravars: "ansible_become_password" may not be set`}},
	{name: "extravars name", files: map[string]string{"env/extravars": "'not a name': 1\n"}, wantErr: []string{`env/extravars: "not a name": not a variable name`}},
	{name: "kwargs extravars", kw: Kwargs{ExtraVars: map[string]any{"hostvars": 1}}, wantErr: []string{`kwargs extravars: "hostvars" may not be set`}},
}

func TestJobRefusals(t *testing.T) {
	for _, tc := range jobRefusals {
		t.Run(tc.name, func(t *testing.T) {
			if tc.wantErr == nil {
				tc.kw.Playbook = ""
				dir := pddCopy(t, "basic")
				pdd, err := LoadPrivateDataDir(dir)
				require.NoError(t, err)
				_, err = NewJob(tc.kw, pdd, tc.o)
				require.ErrorIs(t, err, ErrJobRefused)
				require.ErrorContains(t, err, "kwargs: playbook: missing")
				return
			}
			_, err := tc.run(t)
			require.ErrorIs(t, err, ErrJobRefused)
			for _, w := range tc.wantErr {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

// TestJobTrusted checks what Trusted allows, and what it still refuses.
func TestJobTrusted(t *testing.T) {
	stillRefused := map[string]bool{}
	for _, name := range []string{"playbook escape", "playbook outside project", "playbook absolute",
		"playbook symlink", "playbook hidden", "playbook missing", "playbook directory", "playbook dash",
		"project symlink", "project_dir escape", "inventory absolute", "inventory escape", "inventory itself",
		"inventory inline", "inventory symlink", "inventory hidden", "passwords", "kwargs passwords", "ssh key",
		"kwargs ssh key", "raw args", "binary", "module", "process isolation", "kwargs process isolation",
		"directory isolation", "artifact dir", "ident", "fact cache", "kwargs fact cache", "timeout bound",
		"job_timeout bound", "cmdline kwarg quoting", "forks negative"} {
		stillRefused[name] = true
	}
	for _, tc := range jobRefusals {
		if tc.wantErr == nil {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Trusted = true
			job, err := tc.run(t)
			if !stillRefused[tc.name] {
				require.NoError(t, err, "ansible-runner allows it")
				require.NotEmpty(t, job.Args)
				return
			}
			require.ErrorIs(t, err, ErrJobRefused, "still refused when trusted")
			for _, w := range tc.wantErr {
				require.Contains(t, err.Error(), w)
			}
		})
	}
	job, err := jobCase{files: jobCmd("-i /etc/hosts -e @vars.yml --become"),
		kw: Kwargs{EnvVars: map[string]any{"ANSIBLE_ROLES_PATH": "/opt/roles"}, RolesPath: []string{"/r1", "/r2"}},
		o:  JobOptions{Trusted: true}}.run(t)
	require.NoError(t, err)
	require.Equal(t, []string{"-i", "/etc/hosts", "-e", "@vars.yml", "--become", "-i", filepath.Join(job.Dir, "inventory"),
		"test.yml"}, job.Args, "cmdline taken as ansible-runner takes it")
	require.Equal(t, "/r1:/r2", job.Env["ANSIBLE_ROLES_PATH"])
}

// TestJobErrorsHoldNoSecrets checks that refusals and load errors never
// quote values: environment variables, passwords, extra vars.
func TestJobErrorsHoldNoSecrets(t *testing.T) {
	const secret = "s3cr3tV4lue"
	for _, tc := range []jobCase{
		{files: jobEnv("LD_PRELOAD: " + secret)},
		{files: jobEnv("ANSIBLE_BECOME_PASSWORD: " + secret)},
		{files: jobEnv("ANSIBLE_ROLES_PATH: /" + secret)},
		{files: jobEnv("A: {b: " + secret + "}")},
		{files: jobEnv("A: \"" + secret)},
		{kw: Kwargs{EnvVars: map[string]any{"GIT_ASKPASS": secret}}},
		{kw: Kwargs{EnvVars: map[string]any{"A": []any{secret}}}},
		{files: map[string]string{"env/passwords": `{"Password:": "` + secret + `"}`}},
		{kw: Kwargs{Passwords: json.RawMessage(`{"Password:": "` + secret + `"}`)}},
		{files: map[string]string{"env/ssh_key": secret}},
		{kw: Kwargs{SSHKey: secret}},
		{files: jobCmd("-e ansible_password=" + secret)},
		{files: jobCmd(`-e '{"ansible_password": "` + secret + `"}'`)},
		{files: jobCmd(`-e '{"a": "` + secret + `"'`)},
		{files: jobCmd("-e a='" + secret + "'")},
		{files: jobCmd("--vault-password=" + secret)},
		{files: jobCmd("-k" + secret)},
		{files: jobCmd("-K " + secret)},
		{files: jobCmd(secret)},
		{files: jobCmd("-l " + secret + "@x")},
		{files: jobCmd("-f " + secret)},
		{files: map[string]string{"env/extravars": "ansible_become_password: " + secret}},
		{files: map[string]string{"env/extravars": "a: !!int " + secret}},
		{kw: Kwargs{Limit: "@" + secret}},
	} {
		_, err := tc.run(t)
		if err == nil {
			continue
		}
		require.NotContains(t, err.Error(), secret)
	}
}

func TestKwargsJSON(t *testing.T) {
	// The first line of ansible-runner 2.3.1's transmit (research notes,
	// samples/transmit.bin).
	const sample = `{"ident": "cd28311a10434cf2937856141f06bf2f", "binary": null, "playbook": "test.yml", "module": null, "module_args": null, "host_pattern": null, "verbosity": null, "quiet": false, "rotate_artifacts": 0, "json_mode": false, "omit_event_data": false, "only_failed_event_data": false, "inventory": null, "forks": null, "project_dir": null, "artifact_dir": null, "roles_path": null, "process_isolation": null, "process_isolation_executable": null, "process_isolation_path": null, "process_isolation_hide_paths": null, "process_isolation_show_paths": null, "process_isolation_ro_paths": null, "container_image": "quay.io/ansible/ansible-runner:devel", "container_volume_mounts": null, "container_options": null, "directory_isolation_base_path": null, "cmdline": null, "limit": null, "suppress_env_files": false}`
	var kw Kwargs
	require.NoError(t, json.Unmarshal([]byte(sample), &kw))
	require.Equal(t, Kwargs{Ident: "cd28311a10434cf2937856141f06bf2f", Playbook: "test.yml",
		ContainerImage: "quay.io/ansible/ansible-runner:devel"}, kw)
	out, err := json.Marshal(kw)
	require.NoError(t, err)
	require.JSONEq(t, sample, string(out))
	var compact bytes.Buffer
	require.NoError(t, json.Compact(&compact, []byte(sample)))
	require.Equal(t, compact.String(), string(out), "same keys in the same order")

	const api = `{"ident": "x", "playbook": "p.yml", "forks": "3", "verbosity": 2, "inventory": ["a", "b"],
		"roles_path": "/r", "envvars": {"A": 1}, "extravars": {"x": {"y": [1.5]}}, "passwords": {"p": "s"},
		"settings": {"job_timeout": 5}, "ssh_key": "k", "tags": "t", "skip_tags": "s", "timeout": 9,
		"fact_cache": "f", "fact_cache_type": "jsonfile", "check_job_event_data": true, "keepalive_seconds": 30}`
	require.NoError(t, json.Unmarshal([]byte(api), &kw))
	kw.Passwords = json.RawMessage(`{"p":"s"}`) // compact, as Marshal writes it
	require.Equal(t, 3, *kw.Forks)
	require.Equal(t, 2, *kw.Verbosity)
	require.Equal(t, []any{"a", "b"}, kw.Inventory)
	require.Equal(t, []string{"/r"}, kw.RolesPath)
	require.Equal(t, map[string]any{"A": json.Number("1")}, kw.EnvVars)
	require.Equal(t, map[string]any{"x": map[string]any{"y": []any{1.5}}}, kw.ExtraVars)
	require.JSONEq(t, `{"p": "s"}`, string(kw.Passwords))
	require.Equal(t, 9, *kw.Timeout)
	require.True(t, kw.CheckJobEventData)
	require.Equal(t, map[string]json.RawMessage{"keepalive_seconds": json.RawMessage("30")}, kw.Extra)
	out, err = json.Marshal(kw)
	require.NoError(t, err)
	var back Kwargs
	require.NoError(t, json.Unmarshal(out, &back))
	require.Equal(t, kw, back, "round trip")

	for in, want := range map[string]string{
		`{"forks": "many"}`:     "kwargs: forks: must be a whole number",
		`{"verbosity": "lots"}`: "kwargs: verbosity: must be a whole number",
		`{"playbook": ["a"]}`:   "kwargs: playbook: must be a string",
		`{"quiet": 1}`:          "kwargs: quiet: must be true or false",
		`{"envvars": "A=1"}`:    "kwargs: envvars: must be a mapping",
		`{"roles_path": [1]}`:   "kwargs: roles_path: must be a list of strings",
		`{"extravars": "@x"}`:   "kwargs: extravars: must be a mapping",
		`["not", "an object"]`:  "kwargs:",
		`{"timeout": 1.5}`:      "kwargs: timeout: must be a whole number",
	} {
		require.ErrorContains(t, json.Unmarshal([]byte(in), &kw), want, in)
	}
}

// TestCmdlineForms checks how an untrusted cmdline is read and written.
func TestCmdlineForms(t *testing.T) {
	for in, want := range map[string][]string{
		"--limit=web --tags=a,b":            {"--limit", "web", "--tags", "a,b"},
		"-lweb -l=db -l app":                {"-l", "web", "-l", "db", "-l", "app"},
		"-CDvv -vvv --verbose":              {"-C", "-D", "-v", "-v", "-vvv", "--verbose"},
		"-f3 --forks=004":                   {"-f", "3", "--forks", "4"},
		"-e a=1 -e 'b=x=y  c=' -ed=4":       {"-e", `{"a": !unsafe "1"}`, "-e", `{"b": !unsafe "x=y", "c": !unsafe ""}`, "-e", `{"d": !unsafe "4"}`},
		`-e '{"a": {"b": [1, "{{ x }}"]}}'`: {"-e", `{"a": {!unsafe "b": [1, !unsafe "{{ x }}"]}}`},
		"--extra-vars='x: yes'":             nil,
		"--start-at-task 'Say hello' --list-hosts --list-tasks --list-tags --syntax-check --flush-cache --force-handlers --skip-tags x": {
			"--start-at-task", "Say hello", "--list-hosts", "--list-tasks", "--list-tags", "--syntax-check",
			"--flush-cache", "--force-handlers", "--skip-tags", "x"},
		"": nil,
	} {
		words, err := pddShlexSplit(in)
		require.NoError(t, err)
		got, err := jobCheckCmdline("env/cmdline", words, JobOptions{})
		if in == "--extra-vars='x: yes'" {
			require.ErrorContains(t, err, "--extra-vars: each word must be key=value", "a YAML value needs { }")
			continue
		}
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	got, err := jobCheckCmdline("env/cmdline", []string{"-e", "{x: yes, y: 0755}"}, JobOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{"-e", `{"x": true, "y": 493}`}, got, "YAML 1.1, as Ansible reads it")
	got, err = jobCheckCmdline("env/cmdline", []string{"-l", "~web.*"}, JobOptions{AllowLimitRegex: true})
	require.NoError(t, err)
	require.Equal(t, []string{"-l", "~web.*"}, got)
}

// TestCmdlineMatchesAnsibleArgparse parses accepted cmdlines, before and
// after jobCheckCmdline, with ansible-playbook's own argument parser: the
// options must come out the same (-e values as rewritten).
func TestCmdlineMatchesAnsibleArgparse(t *testing.T) {
	inputs := [][]string{
		{"-lweb", "-CDvv", "--tags=a,b", "-f3", "-t", "x"},
		{"-l=db", "--limit", "app,!web", "-vvv", "--skip-tags=never", "-e", "a=1", "-ea=2"},
		{"--extra-vars={\"k\": [1, 2]}", "--start-at-task=Say hello", "--list-hosts", "-D"},
		{"--forks", "7", "--flush-cache", "--force-handlers", "--syntax-check"},
	}
	type pair struct{ Orig, Ours []string }
	var pairs []pair
	for _, in := range inputs {
		out, err := jobCheckCmdline("env/cmdline", in, JobOptions{})
		require.NoError(t, err, in)
		pairs = append(pairs, pair{in, out})
	}
	script := `import sys, json
from ansible.cli.playbook import PlaybookCLI
def parse(words):
    cli = PlaybookCLI(['ansible-playbook'] + words + ['x.yml'])
    cli.init_parser()
    return vars(cli.parser.parse_args(words + ['x.yml']))
print(json.dumps([[parse(p['Orig']), parse(p['Ours'])] for p in json.load(sys.stdin)]))`
	in, err := json.Marshal(pairs)
	require.NoError(t, err)
	var parsed [][2]map[string]any
	require.NoError(t, json.Unmarshal(pddPython(t, script, in), &parsed))
	for i, p := range parsed {
		orig, ours := p[0], p[1]
		ev := []any{}
		for _, v := range asSlice(orig["extra_vars"]) {
			enc, err := jobCheckExtraVars(JobOptions{}, v.(string))
			require.NoError(t, err)
			ev = append(ev, enc)
		}
		require.Equal(t, ev, asSlice(ours["extra_vars"]), inputs[i])
		delete(orig, "extra_vars")
		delete(ours, "extra_vars")
		require.Equal(t, orig, ours, inputs[i])
	}
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// TestJobExtraVarsAreData runs the real ansible-playbook with an
// untrusted job: templates in extra vars (file, kwargs, cmdline) are
// printed, never evaluated.
func TestJobExtraVarsAreData(t *testing.T) {
	playbook, err := exec.LookPath("ansible-playbook")
	require.NoError(t, err, "ansible-playbook is part of the test set-up (scripts/deps.sh)")
	marker := filepath.Join(t.TempDir(), "pwned")
	tmpl := "{{ lookup('pipe', 'touch " + marker + "') }}"
	dir := pddCopy(t, "basic")
	pddWrite(t, dir, map[string]string{
		"project/show.yml": "- hosts: localhost\n  gather_facts: false\n  tasks:\n" +
			"    - debug: {msg: \"A={{ a }} B={{ b.c[0] }} C={{ c }} D={{ d }}\"}\n",
		"env/extravars": "a: \"" + tmpl + "\"\nb: {c: [\"" + tmpl + "\"]}\n",
		"env/cmdline":   `-e "{\"c\": \"` + tmpl + `\"}"`,
	})
	pdd, err := LoadPrivateDataDir(dir)
	require.NoError(t, err)
	job, err := NewJob(Kwargs{Playbook: "show.yml", ExtraVars: map[string]any{"d": tmpl}}, pdd, JobOptions{})
	require.NoError(t, err)
	cmd := exec.Command(playbook, job.Args...)
	cmd.Dir = job.ProjectDir
	cmd.Env = append(os.Environ(), "ANSIBLE_NOCOLOR=1", "ANSIBLE_STDOUT_CALLBACK=default")
	for k, v := range job.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Equal(t, 4, strings.Count(string(out), "lookup('pipe'"), "%s", out)
	require.NoFileExists(t, marker, "a template in extra vars ran")
}

// FuzzCmdline checks the cmdline splitter and checker: they never panic,
// and what they accept holds only allowed options, each value option
// followed by one value, no -e value naming a file, no host pattern
// reading one.
func FuzzCmdline(f *testing.F) {
	for _, s := range []string{"--limit web -C", "-e @x", "-e a=1 -eb=2", `-e '{"a": [1, {"b": "c"}]}'`,
		"-CDvv -l=x", "--forks=3 -f 4", "-l 'a b' --tags x,y", `-e "{a: !unsafe '{{x}}'}"`, "--lim x", "-- -x",
		"-e '{\"ansible_x\": 1}'", `-e "x: [1"`, "-e {a:", "-vvvv --verbose"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := pddShlexSplit(s)
		if err != nil {
			return
		}
		out, err := jobCheckCmdline("env/cmdline", words, JobOptions{})
		if err != nil {
			require.ErrorIs(t, err, ErrJobRefused)
			return
		}
		for i := 0; i < len(out); i++ {
			w := out[i]
			if len(w) > 1 && strings.Trim(w, "v") == "-" {
				continue
			}
			opt, ok := jobLookupOpt(w)
			require.True(t, ok, "option %q is not allowed: %q", w, out)
			if opt.check == nil {
				continue
			}
			require.Less(t, i+1, len(out), "%q has no value", w)
			i++
			v := out[i]
			require.NotEmpty(t, v)
			require.False(t, strings.HasPrefix(v, "-"), "%q", out)
			switch opt.long {
			case "--extra-vars":
				require.True(t, strings.HasPrefix(v, "{"), "%q", out)
				m, err := pddParseMapping([]byte(v))
				require.NoError(t, err, v)
				require.NoError(t, jobCheckVarNames(m))
			case "--limit":
				require.NotContains(t, v, "@")
			}
		}
	})
}
