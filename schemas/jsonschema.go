package schemas

import (
	"bytes"
	"embed"
	"fmt"
	"slices"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// JSON Schema documents (draft 2020-12) of the wire types, for users who
// validate before they publish, and for the tests that keep the Go types
// and the documents in step.
//
//go:embed jsonschema/*.schema.json
var schemaFiles embed.FS

// Names of the JSON Schemas.
const (
	SchemaTaskRequest  = "task-request"
	SchemaTaskStatus   = "task-status"
	SchemaRunnerStatus = "runner-status"
	SchemaEvent        = "event"
)

// SchemaNames lists every JSON Schema.
func SchemaNames() []string {
	return []string{SchemaTaskRequest, SchemaTaskStatus, SchemaRunnerStatus, SchemaEvent}
}

// JSONSchema returns the JSON Schema document called name.
func JSONSchema(name string) ([]byte, error) {
	if !slices.Contains(SchemaNames(), name) {
		return nil, fmt.Errorf("no JSON Schema %q (have %v)", name, SchemaNames())
	}
	return schemaFiles.ReadFile("jsonschema/" + name + ".schema.json")
}

// Validator checks JSON documents against the wire types' JSON Schemas.
type Validator struct {
	compiled map[string]*jsonschema.Schema
}

// NewValidator compiles every JSON Schema.
func NewValidator() (*Validator, error) {
	c := jsonschema.NewCompiler()
	v := &Validator{compiled: map[string]*jsonschema.Schema{}}
	for _, name := range SchemaNames() {
		b, err := JSONSchema(name)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
		url := name + ".schema.json"
		if err := c.AddResource(url, doc); err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
		if v.compiled[name], err = c.Compile(url); err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
	}
	return v, nil
}

// Validate checks data, a JSON document, against the schema called name.
func (v *Validator) Validate(name string, data []byte) error {
	s, ok := v.compiled[name]
	if !ok {
		return fmt.Errorf("no JSON Schema %q", name)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return s.Validate(doc)
}
