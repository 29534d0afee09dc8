package jsbridge_test

import (
	"fmt"

	"github.com/ansible-worker/ansible-worker/jsbridge"
)

// The subjects, keys and consumer of a group, as users see them.
func ExampleNames() {
	n := jsbridge.Names{Prefix: "ansible", Group: "production"}
	fmt.Println(n.TaskSubject())
	fmt.Println(n.CancelSubject("a1b2"))
	fmt.Println(n.Consumer())
	fmt.Println(jsbridge.StatusBucket, n.StatusKey("a1b2"))
	fmt.Println(n.MQTTStatusTopic("a1b2"))
	fmt.Println(jsbridge.EventSubject("production", "a1b2"))
	fmt.Println(jsbridge.RunnerStatusSubject("production", "a1b2"))
	// Output:
	// ansible.production.tasks
	// ansible.production.tasks.a1b2.cancel
	// ansible-worker-production
	// ansible_status production.a1b2
	// ansible/production/tasks/a1b2/status
	// pub.ansible.runner.production.a1b2.event
	// pub.ansible.runner.production.a1b2.status
}
