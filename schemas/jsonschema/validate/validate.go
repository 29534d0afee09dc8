// Package validate checks JSON documents against ansible-worker's JSON
// Schemas. It is kept apart from the program, which does not need it: the
// JSON Schema library's start-up cost would otherwise be paid by every
// command.
package validate

import (
	"bytes"
	"fmt"

	"github.com/santhosh-tekuri/jsonschema/v6"

	schemadocs "github.com/ansible-worker/ansible-worker/schemas/jsonschema"
)

// Validator checks JSON documents against the wire types' JSON Schemas.
type Validator struct {
	compiled map[string]*jsonschema.Schema
}

// New compiles every JSON Schema.
func New() (*Validator, error) {
	c := jsonschema.NewCompiler()
	v := &Validator{compiled: map[string]*jsonschema.Schema{}}
	for _, name := range schemadocs.Names() {
		b, err := schemadocs.Document(name)
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
