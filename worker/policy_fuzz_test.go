package worker

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// FuzzTaskIsData feeds arbitrary task requests through the parser, the
// default Policy and WriteExtraVars. What is accepted sets no reserved
// variable, uses no file or regex host pattern, and reaches Ansible with
// every string and every nested key tagged !unsafe.
func FuzzTaskIsData(f *testing.F) {
	for _, s := range []string{
		`{"task_id":"t1","playbook":"a.yml","inventory":"web1,10.0.0.1:22,[::1]:2222,::1,","limit":"web*:!db","extra_vars":{"users":{"{{ lookup('pipe','id') }}":1},"l":[{"{% x %}":"{# y #}"}]}}`,
		`{"task_id":"t1","playbook":"a.yml","inventory":"h","extra_vars":{"ansible_python_interpreter":"touch /tmp/x; python3"}}`,
		`{"task_id":"t1","playbook":"a.yml","inventory":"h","limit":"@/proc/1/environ","tags":["@x"]}`,
		`{"task_id":"t1","playbook":"a.yml","inventory":"h","limit":"~(a+)+$"}`,
		`{"task_id":"t1","playbook":"a.yml","inventory":"localhost -oProxyCommand=x,","forks":500}`,
		`{"task_id":"t1","playbook":"a.yml","inventory":"h","extra_vars":{"name":1,"with_items":2,"Ansible_x":3,"a b":4}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := schemas.ParseTaskRequest(data)
		if err != nil {
			return
		}
		if (&Policy{}).Check(&req) != nil {
			return
		}
		require.NotContains(t, req.Limit, "@")
		require.NotContains(t, req.Limit, "~")
		for _, tag := range append(append([]string{}, req.Tags...), req.SkipTags...) {
			require.NotContains(t, tag, "@")
		}
		if req.InlineInventory() {
			require.False(t, strings.ContainsAny(req.Inventory, " \t=@\"'\\/"), "inline inventory %q", req.Inventory)
			for _, h := range strings.Split(req.Inventory, ",") {
				require.False(t, strings.HasPrefix(h, "-"), "host %q", h)
			}
		}
		for k := range req.ExtraVars {
			require.False(t, ReservedVarName(k), "reserved name %q accepted", k)
		}
		b, err := EncodeExtraVars(req.ExtraVars)
		require.NoError(t, err)
		var doc yaml.Node
		require.NoError(t, yaml.Unmarshal(b, &doc))
		requireInert(t, doc.Content[0], true)
	})
}

// requireInert fails unless every string scalar under n, and every key
// below the top level, is tagged !unsafe.
func requireInert(t *testing.T, n *yaml.Node, top bool) {
	t.Helper()
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i < len(n.Content); i += 2 {
			k := n.Content[i]
			if top {
				require.NotContains(t, k.Value, "{", "top-level key %q", k.Value)
			} else {
				require.Equal(t, "!unsafe", k.Tag, "key %q", k.Value)
			}
			requireInert(t, n.Content[i+1], false)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			requireInert(t, c, false)
		}
	case yaml.ScalarNode:
		if n.Tag == "!!str" || n.Tag == "" {
			t.Fatalf("string %q is not tagged !unsafe", n.Value)
		}
	}
}
