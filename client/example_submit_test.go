package client_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ansible-worker/ansible-worker/client"
	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// Submit a task and follow its output until it ends, as
// `ansible-worker submit --wait` does.
func Example() {
	// A NATS server with JetStream and a worker of the group "production"
	// serving test/testdata/playbooks, as scripts/run.sh starts them.
	sys, err := startSystem(true)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sys.close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// sys.cfg is what config.LoadConfig reads from the configuration file.
	cl, err := client.Connect(ctx, sys.cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cl.Close()

	rcpt, err := cl.Submit(ctx, schemas.TaskRequest{
		TaskID:    "hello-1",
		Playbook:  "quick.yml",
		Inventory: "inventory/hosts",
		ExtraVars: map[string]any{"n": 42},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("submitted", rcpt.TaskID, "to", rcpt.Subject)

	// Follow replays the task's events from the first, then follows them.
	final, err := cl.Follow(ctx, rcpt.TaskID, true, func(u jsbridge.Update) {
		if u.Event != nil {
			printOutput(u.Event.Stdout)
		}
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s: ok=%d failed=%d\n", final.State, final.TasksOK, final.TasksFailed)
	// Output:
	// submitted hello-1 to ansible.production.tasks
	// PLAY [Quick]
	// TASK [Quick task]
	// ok: [localhost] => {
	//     "msg": "42"
	// }
	// PLAY RECAP
	// localhost                  : ok=1    changed=0    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0
	// success: ok=1 failed=0
}

// printOutput prints Ansible's output without blank lines and without the
// rows of stars, whose width depends on the terminal.
func printOutput(stdout string) {
	for _, line := range strings.Split(stdout, "\n") {
		if line = strings.TrimRight(line, " *\r"); line != "" {
			fmt.Println(line)
		}
	}
}
