package schemas_test

import (
	"fmt"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// A task request as published to ansible.<group>.tasks. Fields left out take
// their defaults; a bad request is refused with every problem listed, and the
// id still comes back so a failed status can be published for it.
func ExampleParseTaskRequest() {
	req, err := schemas.ParseTaskRequest([]byte(`{
	  "task_id": "a1b2c3d4e5f67890",
	  "playbook": "deploy/application.yml",
	  "inventory": "production",
	  "extra_vars": {"app_version": "2.5.0", "replicas": 3},
	  "limit": "webservers",
	  "tags": ["deploy"],
	  "timeout": 1800
	}`))
	if err != nil {
		panic(err)
	}
	fmt.Println("task:", req.TaskID)
	fmt.Println("playbook:", req.Playbook, "on", req.Inventory, "limit", req.Limit)
	fmt.Println("tags:", req.Tags, "skip_tags:", req.SkipTags)
	fmt.Println("extra_vars:", req.ExtraVars)
	fmt.Println("forks:", req.Forks, "verbosity:", req.Verbosity, "timeout:", req.Timeout)

	bad, err := schemas.ParseTaskRequest([]byte(`{"task_id": "job-7", "playbook": "site.yml", "forks": "10", "verbosity": 7}`))
	fmt.Println("id of the bad request:", bad.TaskID)
	fmt.Println(err)
	// Output:
	// task: a1b2c3d4e5f67890
	// playbook: deploy/application.yml on production limit webservers
	// tags: [deploy] skip_tags: []
	// extra_vars: map[app_version:2.5.0 replicas:3]
	// forks: 5 verbosity: 0 timeout: 1800
	// id of the bad request: job-7
	// invalid task: inventory is required; verbosity must be 0 to 4, got 7; forks must be an integer, got a string
}
