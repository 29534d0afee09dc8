package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// constStrings returns the string constants of file whose names start with
// prefix, by name.
func constStrings(t *testing.T, file, prefix string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	require.NoError(t, err)
	out := map[string]string{}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, s := range gd.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if strings.HasPrefix(n.Name, prefix) && i < len(vs.Values) {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok {
						out[n.Name], _ = strconv.Unquote(lit.Value)
						if lit.Kind == token.INT {
							out[n.Name] = lit.Value
						}
					}
				}
			}
		}
	}
	require.NotEmpty(t, out, "no %s* constants in %s", prefix, file)
	return out
}

// docs/cli.md lists every variable the configuration reads: a new Env
// constant in config/env.go must be added to configEnvVars.
func TestDocCLIListsEveryConfigEnvVar(t *testing.T) {
	listed := map[string]bool{}
	for _, e := range configEnvVars {
		listed[e.Name] = true
	}
	for name, v := range constStrings(t, "../../config/env.go", "Env") {
		require.True(t, listed[v], "config.%s (%s) is missing from configEnvVars", name, v)
	}
	doc := renderCLIDoc(newApp())
	for _, v := range []string{"ANSIBLE_WORKER_CONFIG", envNotifySocket, "RUNNER_NATS_SERVERS"} {
		require.Contains(t, doc, "`"+v+"`")
	}
}

// Every exit code constant has a line in exitCodes, so in docs/cli.md and
// --help.
func TestDocCLIListsEveryExitCode(t *testing.T) {
	documented := map[string]bool{}
	for _, e := range exitCodes {
		documented[strconv.Itoa(e.Code)] = true
	}
	for name, v := range constStrings(t, "main.go", "exit") {
		require.True(t, documented[v], "%s = %s is missing from exitCodes", name, v)
	}
}
