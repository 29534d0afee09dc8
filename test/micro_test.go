package test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// Workers are a NATS micro service: `nats micro info` shows their group,
// concurrency and the endpoints cancel and status; `nats micro stats`
// their running tasks and totals; `ansible-worker workers` lists the live
// workers of every group; the status endpoint answers with a task's
// status (404 for an unknown task) and a cancel goes through the cancel
// endpoint.
func TestWorkersAsMicroService(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	prod := startWorker(t, ns.url, workerOpts{Concurrency: 2})
	staging := startWorker(t, ns.url, workerOpts{Group: "staging"})
	c := connectClient(t, ns.url)

	_, errOut, code := runCLI(t, "submit", "-s", ns.url, "--wait", "--task-id", "svc-1", "-p", "quick.yml", "-i", "inventory/hosts")
	require.Equal(t, 0, code, errOut)
	var out string

	out, errOut, code = runCLI(t, "workers", "-s", ns.url)
	require.Equal(t, 0, code, errOut)
	require.Regexp(t, `(?m)^production\s+`+prod.id+`\s+2\s+0\s+1\s+0\s+0\s+0\s`, out)
	require.Regexp(t, `(?m)^staging\s+`+staging.id+`\s+1\s+0\s+0\s+0\s+0\s+0\s`, out)
	out, errOut, code = runCLI(t, "workers", "-s", ns.url, "--json")
	require.Equal(t, 0, code, errOut)
	var ws []jsbridge.WorkerInfo
	require.NoError(t, json.Unmarshal([]byte(out), &ws), out)
	require.Len(t, ws, 2)
	require.Equal(t, "production", ws[0].Group)
	require.Equal(t, int64(1), ws[0].Stats.Ended["success"])

	// nats micro ls lists both workers' instances of the service.
	out, err := natsCLI(t, ns.url, "micro", "ls", "ansible-worker", "--json")
	require.NoError(t, err, out)
	for _, w := range ws {
		require.Contains(t, out, w.ServiceID)
	}
	out, err = natsCLI(t, ns.url, "micro", "info", "ansible-worker", ws[0].ServiceID, "--json")
	require.NoError(t, err, out)
	for _, want := range []string{`"concurrency": "2"`, `"group": "production"`, `"name": "cancel"`, `"name": "status"`,
		`"subject": "ansible.production.tasks.*.status"`, `"subject": "ansible.production.tasks.*.cancel"`} {
		require.Contains(t, out, want)
	}
	out, err = natsCLI(t, ns.url, "micro", "stats", "ansible-worker", ws[0].ServiceID, "--json")
	require.NoError(t, err, out)
	require.Regexp(t, `"success":\s*1`, out)

	out, err = natsCLI(t, ns.url, "req", "ansible.production.tasks.svc-1.status", "")
	require.NoError(t, err, out)
	require.Contains(t, out, `"task_id":"svc-1"`)
	require.Contains(t, out, `"state":"success"`)
	out, _ = natsCLI(t, ns.url, "req", "ansible.production.tasks.nope.status", "")
	require.Contains(t, out, "404")
	require.Contains(t, out, "no task nope in group production")

	// A running task cancelled through the endpoint.
	_, errOut, code = runCLI(t, "submit", "-s", ns.url, "--task-id", "svc-2", "-p", "slow.yml", "-i", "inventory/hosts",
		"-e", "seconds=30")
	require.Equal(t, 0, code, errOut)
	c.waitRunning(t, "production", "svc-2")
	checkFor(t, 10*time.Second, 200*time.Millisecond, func() error {
		out, _, _ := runCLI(t, "workers", "-s", ns.url)
		if !regexp.MustCompile(`(?m)^production\s+` + prod.id + `\s+2\s+1\s`).MatchString(out) {
			return fmt.Errorf("the running task is not counted:\n%s", out)
		}
		return nil
	})
	out, err = natsCLI(t, ns.url, "req", "ansible.production.tasks.svc-2.cancel", "")
	require.NoError(t, err, out)
	require.Contains(t, out, `"result":"stopping"`, "the worker running it stops it")
	require.Equal(t, schemas.StateCancelled, c.waitFinal(t, "production", "svc-2", 30*time.Second).State)
}
