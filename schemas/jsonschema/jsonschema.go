// Package jsonschema holds the JSON Schema documents (draft 2020-12) of
// ansible-worker's wire types, for users who validate before they publish.
// It embeds the documents only; package validate checks JSON against them.
package jsonschema

import (
	"embed"
	"fmt"
	"slices"
)

//go:embed *.schema.json
var files embed.FS

// Names of the schemas.
const (
	TaskRequest  = "task-request"
	TaskStatus   = "task-status"
	RunnerStatus = "runner-status"
	Event        = "event"
	JobRequest   = "job-request"
	JobResponse  = "job-response"
)

// Names lists every schema.
func Names() []string {
	return []string{TaskRequest, TaskStatus, RunnerStatus, Event, JobRequest, JobResponse}
}

// Document returns the JSON Schema document called name.
func Document(name string) ([]byte, error) {
	if !slices.Contains(Names(), name) {
		return nil, fmt.Errorf("no JSON Schema %q (have %v)", name, Names())
	}
	return files.ReadFile(name + ".schema.json")
}
