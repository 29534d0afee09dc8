package worker

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// callbackSource is the stdout callback plugin that reports job events on
// the side-channel fd.
//
//go:embed callback/ansible_worker.py
var callbackSource []byte

// CallbackPluginName is the name of the embedded stdout callback plugin, the
// value of ANSIBLE_STDOUT_CALLBACK.
const CallbackPluginName = "ansible_worker"

// InstallCallback writes the embedded callback plugin to
// <dir>/callback-<sha8>/ansible_worker.py and returns that directory, the
// value for ANSIBLE_CALLBACK_PLUGINS. The directory is named after the
// plugin's content, so different worker versions sharing dir never see each
// other's plugin. It is idempotent and safe to call from several processes at
// once: the file appears atomically (temp file + rename) with full content.
func InstallCallback(dir string) (string, error) {
	pluginDir, err := installFile(dir, "callback", CallbackPluginName+".py", callbackSource)
	if err != nil {
		return "", fmt.Errorf("install callback: %w", err)
	}
	return pluginDir, nil
}

// installFile writes src as <dir>/<prefix>-<sha8 of src>/name and returns
// that directory (see InstallCallback).
func installFile(dir, prefix, name string, src []byte) (string, error) {
	sum := sha256.Sum256(src)
	fileDir := filepath.Join(dir, prefix+"-"+hex.EncodeToString(sum[:4]))
	target := filepath.Join(fileDir, name)
	// Made here, not by Python with the umask (maybe group-writable, which
	// New refuses): Python loads what is in it.
	if err := os.MkdirAll(filepath.Join(fileDir, "__pycache__"), 0o755); err != nil {
		return "", err
	}
	if b, err := os.ReadFile(target); err == nil && bytes.Equal(b, src) {
		return fileDir, nil
	}
	// The temp name must not end in .py: ansible would load it as a plugin.
	tmp, err := os.CreateTemp(fileDir, "."+prefix+"-*.tmp")
	if err != nil {
		return "", err
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // no-op after the rename
	_, werr := tmp.Write(src)
	if werr == nil {
		werr = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return "", werr
	}
	if err := os.Rename(tmpName, target); err != nil {
		return "", err
	}
	return fileDir, nil
}

// CallbackEnv returns the environment entries that make ansible-playbook use
// the plugin installed in pluginDir and write its events to descriptor fd
// (cmd.ExtraFiles[i] is fd 3+i), with plain text (no colours) in the events.
// Append them after the base environment so they win over inherited values.
func CallbackEnv(pluginDir string, fd int) []string {
	return callbackEnv(pluginDir, fd, false)
}

// callbackEnv is CallbackEnv with ANSI colours in the events' text when
// color is set.
func callbackEnv(pluginDir string, fd int, color bool) []string {
	env := []string{
		"ANSIBLE_CALLBACK_PLUGINS=" + pluginDir,
		"ANSIBLE_STDOUT_CALLBACK=" + CallbackPluginName,
		"ANSIBLE_WORKER_EVENT_FD=" + strconv.Itoa(fd),
		// No .retry files next to playbooks; no interactive host key
		// prompts in an unattended worker.
		"ANSIBLE_RETRY_FILES_ENABLED=False",
		"ANSIBLE_HOST_KEY_CHECKING=False",
		"ANSIBLE_NOCOWS=1",
		// Stdout reaches the worker as it is written, not at exit.
		"PYTHONUNBUFFERED=1",
	}
	if color {
		// Ansible colours only a terminal's output; ansible-runner gives it
		// one, the worker gives it pipes. FORCE_COLOR also wins over a
		// NO_COLOR or ANSIBLE_NOCOLOR of the environment.
		return append(env, "ANSIBLE_FORCE_COLOR=1")
	}
	return append(env, "ANSIBLE_NOCOLOR=1")
}

// CompileCallback byte-compiles the installed plugin with the Python that
// runs ansible-playbook, so no run pays for compiling it (Python does not
// cache it itself when PYTHONDONTWRITEBYTECODE is set or the directory is
// read-only for it). It is best effort: a failure only costs that time.
func CompileCallback(pluginDir, ansiblePlaybook string) error {
	interp, err := pythonOf(ansiblePlaybook)
	if err != nil {
		return err
	}
	args := append(interp[1:], "-m", "py_compile", filepath.Join(pluginDir, CallbackPluginName+".py"))
	if out, err := exec.Command(interp[0], args...).CombinedOutput(); err != nil {
		return fmt.Errorf("py_compile: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// pythonOf returns the interpreter, with its arguments, of the #! line of
// the ansible-playbook script.
func pythonOf(ansiblePlaybook string) ([]string, error) {
	path, err := exec.LookPath(ansiblePlaybook)
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", ansiblePlaybook, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	line, _ := bufio.NewReader(f).ReadString('\n')
	f.Close()
	interp := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "#!"))
	if !strings.HasPrefix(line, "#!") || len(interp) == 0 {
		return nil, fmt.Errorf("%s has no #! line naming its Python", path)
	}
	return interp, nil
}
