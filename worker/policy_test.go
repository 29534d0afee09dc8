package worker

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

func policyTask(mod func(*schemas.TaskRequest)) *schemas.TaskRequest {
	t := &schemas.TaskRequest{TaskID: "t1", Playbook: "site.yml", Inventory: "hosts", Forks: schemas.DefaultForks,
		ExtraVars: map[string]any{}, Tags: []string{}, SkipTags: []string{}}
	mod(t)
	return t
}

func TestPolicyCheck(t *testing.T) {
	t.Parallel()
	vars := func(kv ...string) func(*schemas.TaskRequest) {
		return func(r *schemas.TaskRequest) {
			for _, k := range kv {
				r.ExtraVars[k] = map[string]any{"nested": "x"}
			}
		}
	}
	for _, tc := range []struct {
		name   string
		policy Policy
		mod    func(*schemas.TaskRequest)
		err    string // "" when accepted
	}{
		{"plain vars", Policy{}, vars("who", "app_version", "users"), ""},
		{"interpreter", Policy{}, vars("ansible_python_interpreter"), `"ansible_python_interpreter" may not be set by a task`},
		{"ssh args", Policy{}, vars("ansible_connection", "ansible_ssh_common_args"),
			`"ansible_connection", "ansible_ssh_common_args" may not be set`},
		{"any case", Policy{}, vars("Ansible_Become_Exe"), `"Ansible_Become_Exe"`},
		{"reserved keyword", Policy{}, vars("environment"), `"environment"`},
		{"magic variable", Policy{}, vars("inventory_hostname"), `"inventory_hostname"`},
		{"with_ prefix", Policy{}, vars("with_items"), `"with_items"`},
		{"allowed by the operator", Policy{AllowExtraVars: []string{"ansible_become_password"}}, vars("ansible_become_password"), ""},
		{"allowing one is not allowing all", Policy{AllowExtraVars: []string{"ansible_become_password"}},
			vars("ansible_become_password", "ansible_become_exe"), `"ansible_become_exe"`},
		{"nested names are data", Policy{}, func(r *schemas.TaskRequest) {
			r.ExtraVars["app"] = map[string]any{"ansible_host": "x", "name": "y"}
		}, ""},
		{"regex limit", Policy{}, func(r *schemas.TaskRequest) { r.Limit = "~(a+)+$" }, "worker.allow_limit_regex"},
		{"regex limit allowed", Policy{AllowLimitRegex: true}, func(r *schemas.TaskRequest) { r.Limit = "~web[0-9]+" }, ""},
		{"glob limit", Policy{}, func(r *schemas.TaskRequest) { r.Limit = "web*:!db1:&prod" }, ""},
		{"forks at the default bound", Policy{}, func(r *schemas.TaskRequest) { r.Forks = DefaultMaxForks }, ""},
		{"forks over the default bound", Policy{}, func(r *schemas.TaskRequest) { r.Forks = DefaultMaxForks + 1 },
			"forks 51 is more than worker.max_forks 50"},
		{"forks over a set bound", Policy{MaxForks: 10}, func(r *schemas.TaskRequest) { r.Forks = 11 }, "worker.max_forks 10"},
		{"timeout without a bound", Policy{}, func(r *schemas.TaskRequest) { r.Timeout = 1 << 30 }, ""},
		{"timeout over the bound", Policy{MaxTaskTimeout: time.Minute}, func(r *schemas.TaskRequest) { r.Timeout = 61 },
			"timeout 61 is more than worker.max_task_timeout 1m0s"},
		{"timeout at the bound", Policy{MaxTaskTimeout: time.Minute}, func(r *schemas.TaskRequest) { r.Timeout = 60 }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.policy.Check(policyTask(tc.mod))
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.err)
			var inv *schemas.InvalidTaskError
			require.ErrorAs(t, err, &inv)
		})
	}
}

// The embedded reserved names hold every name the installed Ansible
// reserves, so an upgrade that adds a keyword fails here.
func TestReservedVarNamesCoverInstalledAnsible(t *testing.T) {
	t.Parallel()
	py := ansiblePython(t)
	out, err := exec.Command(py, "-c",
		"import json; from ansible.vars.reserved import get_reserved_names; print(json.dumps(sorted(get_reserved_names())))").Output()
	require.NoError(t, err)
	var names []string
	require.NoError(t, json.Unmarshal(out, &names))
	require.NotEmpty(t, names)
	for _, n := range names {
		require.True(t, ReservedVarName(n), "Ansible reserves %q and the worker lets tasks set it", n)
	}
}

// ansiblePython is the interpreter of the installed ansible-playbook.
func ansiblePython(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("ansible-playbook")
	require.NoError(t, err, "ansible-playbook must be installed (scripts/deps.sh)")
	out, err := exec.Command("head", "-1", path).Output()
	require.NoError(t, err)
	fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(string(out)), "#!"))
	require.NotEmpty(t, fields, "no #! line in %s", path)
	return fields[len(fields)-1]
}

func TestInventoryEnabled(t *testing.T) {
	t.Parallel()
	kv, set := inventoryEnabled([]string{"PATH=/bin"}, false)
	require.True(t, set)
	require.Equal(t, "ANSIBLE_INVENTORY_ENABLED=host_list,auto,yaml,ini,toml", kv)
	kv, set = inventoryEnabled([]string{"ANSIBLE_INVENTORY_ENABLED=script, amazon.aws.aws_ec2,ansible.builtin.script,ini"}, false)
	require.True(t, set)
	require.Equal(t, "ANSIBLE_INVENTORY_ENABLED=amazon.aws.aws_ec2,ini", kv)
	_, set = inventoryEnabled(nil, true)
	require.False(t, set, "with scripts allowed the operator's own setting stays")
}
