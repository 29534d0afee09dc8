package worker_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ansible-worker/ansible-worker/schemas"
	"github.com/ansible-worker/ansible-worker/worker"
)

// The arguments ansible-playbook gets for a task. Forks is left out when it
// is Ansible's default of 5; the playbook always comes last.
func ExampleBuildArgs() {
	task := &schemas.TaskRequest{
		TaskID:    "a1b2c3d4e5f67890",
		Limit:     "webservers",
		Tags:      []string{"deploy", "config"},
		SkipTags:  []string{"slow"},
		Verbosity: 2,
		CheckMode: true,
		Forks:     10,
	}
	fmt.Println(worker.BuildArgs(task, "deploy/application.yml", "production", "/run/ansible-worker/vars.yml"))

	defaults := &schemas.TaskRequest{Forks: schemas.DefaultForks}
	fmt.Println(worker.BuildArgs(defaults, "site.yml", "web1,web2,", ""))
	// Output:
	// [-i production -e @/run/ansible-worker/vars.yml --limit webservers --tags deploy,config --skip-tags slow -vv --check --forks 10 deploy/application.yml]
	// [-i web1,web2, site.yml]
}

// Playbook and inventory paths must stay inside the playbook directory, with
// symbolic links followed.
func ExampleResolveInside() {
	dir, err := os.MkdirTemp("", "playbooks")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	_ = os.MkdirAll(filepath.Join(dir, "deploy"), 0o755)
	_ = os.WriteFile(filepath.Join(dir, "deploy", "app.yml"), []byte("- hosts: all\n"), 0o644)
	_ = os.Symlink("/etc", filepath.Join(dir, "etc"))

	for _, rel := range []string{"deploy/./app.yml", "deploy/missing.yml", "../outside.yml", "/etc/passwd", "etc/passwd"} {
		p, err := worker.ResolveInside(dir, rel, "playbook")
		switch {
		case errors.Is(err, worker.ErrNotFound):
			fmt.Println("missing:", err)
		case err != nil:
			fmt.Println("refused:", err)
		default:
			fmt.Println("ok:", p)
		}
	}
	// Output:
	// ok: deploy/app.yml
	// missing: playbook "deploy/missing.yml": not found in the playbook directory
	// refused: playbook "../outside.yml" leads outside the playbook directory
	// refused: playbook "/etc/passwd" must be a path relative to the playbook directory
	// refused: playbook "etc/passwd" leads outside the playbook directory
}
