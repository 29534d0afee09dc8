package worker

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// Policy is what the operator lets submitters choose beyond the playbook
// and inventory paths. Whoever can publish a task is not trusted: what a
// Policy does not allow is refused with a message that names it.
type Policy struct {
	// AllowExtraVars lists the extra var names a submitter may set although
	// they start with ansible_ or are names Ansible reserves (for example a
	// become password the operator accepts from submitters).
	AllowExtraVars []string
	// AllowLimitRegex lets a limit use "~regex" host patterns, which can
	// take a CPU for minutes on a crafted pattern.
	AllowLimitRegex bool
	// AllowInventoryScripts keeps Ansible's script inventory plugin on, so
	// an executable file named as inventory is run.
	AllowInventoryScripts bool
	// MaxForks bounds a task's forks (0: DefaultMaxForks).
	MaxForks int
	// MaxTaskTimeout bounds a task's own timeout (0: no bound).
	MaxTaskTimeout time.Duration
	// AllowRunnerJobs lets a task ship its own private data directory
	// (runner_job): its project runs as code on the worker host.
	AllowRunnerJobs bool
}

// DefaultMaxForks bounds forks when Policy.MaxForks is 0.
const DefaultMaxForks = 50

// Check returns what the policy refuses in req, as an
// *schemas.InvalidTaskError, or nil.
func (p *Policy) Check(req *schemas.TaskRequest) error {
	var problems []string
	if req.RunnerJob != nil && !p.AllowRunnerJobs {
		problems = append(problems, "runner_job: this group does not run shipped private data directories "+
			"(their projects run as code on the worker); the operator can allow them with worker.allow_runner_jobs")
	}
	if names := p.refusedVars(req.ExtraVars); len(names) > 0 {
		problems = append(problems, fmt.Sprintf("extra_vars: %s may not be set by a task: names starting with ansible_ "+
			"(connection, interpreter and privilege settings) and names Ansible reserves are the operator's, "+
			"unless worker.allow_extra_vars lists them", strings.Join(names, ", ")))
	}
	if !p.AllowLimitRegex && strings.Contains(req.Limit, "~") {
		problems = append(problems, "limit: regular expression host patterns (~) are off; "+
			"the operator can allow them with worker.allow_limit_regex")
	}
	maxForks := p.MaxForks
	if maxForks <= 0 {
		maxForks = DefaultMaxForks
	}
	if req.Forks > maxForks {
		problems = append(problems, fmt.Sprintf("forks %d is more than worker.max_forks %d", req.Forks, maxForks))
	}
	if t := time.Duration(req.Timeout) * time.Second; p.MaxTaskTimeout > 0 && t > p.MaxTaskTimeout {
		problems = append(problems, fmt.Sprintf("timeout %d is more than worker.max_task_timeout %s",
			req.Timeout, p.MaxTaskTimeout))
	}
	if len(problems) > 0 {
		return &schemas.InvalidTaskError{Problems: problems}
	}
	return nil
}

// refusedVars returns the quoted top-level names of vars that are reserved
// and not allowed, sorted.
func (p *Policy) refusedVars(vars map[string]any) []string {
	var out []string
	for k := range vars {
		if ReservedVarName(k) && !slices.Contains(p.AllowExtraVars, k) {
			out = append(out, fmt.Sprintf("%q", k))
		}
	}
	sort.Strings(out)
	return out
}

// ReservedVarName reports whether name is one a submitter must not set as
// an extra var: extra vars win over everything in Ansible, so a name that
// starts with ansible_ would choose the connection, the interpreter or the
// privileges (ansible_python_interpreter runs any command), and a reserved
// or magic name would replace what Ansible itself provides.
func ReservedVarName(name string) bool {
	lower := strings.ToLower(name)
	if strings.HasPrefix(lower, "ansible_") || strings.HasPrefix(lower, "with_") {
		return true
	}
	return slices.Contains(ReservedVarNames(), name)
}

// ReservedVarNames returns the names ansible-core reserves (its
// ansible.vars.reserved.get_reserved_names(), which a test compares with
// the installed Ansible) and its magic variables that do not start with
// ansible_.
func ReservedVarNames() []string {
	return []string{
		// get_reserved_names() of ansible-core 2.14.
		"action", "always", "any_errors_fatal", "args", "async", "async_val", "become", "become_exe",
		"become_flags", "become_method", "become_user", "block", "changed_when", "check_mode", "collections",
		"connection", "debugger", "delay", "delegate_facts", "delegate_to", "diff", "environment", "fact_path",
		"failed_when", "force_handlers", "gather_facts", "gather_subset", "gather_timeout", "handlers", "hosts",
		"ignore_errors", "ignore_unreachable", "local_action", "loop", "loop_control", "loop_with",
		"max_fail_percentage", "module_defaults", "name", "no_log", "notify", "order", "poll", "port",
		"post_tasks", "pre_tasks", "register", "remote_user", "rescue", "retries", "roles", "run_once", "serial",
		"strategy", "tags", "tasks", "throttle", "timeout", "until", "vars", "vars_files", "vars_prompt", "when",
		"with_",
		// Magic variables: inventory_hostname is also the address Ansible
		// connects to when ansible_host is not set.
		"group_names", "groups", "hostvars", "inventory_dir", "inventory_file", "inventory_hostname",
		"inventory_hostname_short", "omit", "play_hosts", "playbook_dir", "role_name", "role_names", "role_path",
	}
}

// inventoryEnabled is the value of ANSIBLE_INVENTORY_ENABLED for a task:
// the worker's own value, or Ansible's default, without the script plugin
// unless allowScripts. ansible.cfg's enable_plugins is overridden by it.
func inventoryEnabled(environ []string, allowScripts bool) (string, bool) {
	if allowScripts {
		return "", false
	}
	list := "host_list,script,auto,yaml,ini,toml" // Ansible's default
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "ANSIBLE_INVENTORY_ENABLED="); ok && strings.TrimSpace(v) != "" {
			list = v
		}
	}
	var keep []string
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(p)
		if p != "" && p != "script" && p != "ansible.builtin.script" {
			keep = append(keep, p)
		}
	}
	return "ANSIBLE_INVENTORY_ENABLED=" + strings.Join(keep, ","), true
}
