package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// ParseExtraVars takes what ansible-playbook -e takes.
func TestParseExtraVars(t *testing.T) {
	dir := t.TempDir()
	jsonFile := filepath.Join(dir, "v.json")
	require.NoError(t, os.WriteFile(jsonFile, []byte(`{"n": 1, "l": [1, "x"]}`), 0o600))
	yamlFile := filepath.Join(dir, "v.yml")
	require.NoError(t, os.WriteFile(yamlFile, []byte("who: file\nnested:\n  a: b\n"), 0o600))
	for _, tc := range []struct {
		in   string
		want string // JSON
	}{
		{``, `{}`},
		{`who=you`, `{"who":"you"}`},
		{`who="a b"`, `{"who":"a b"}`},
		{`a=1 b='x y'`, `{"a":"1","b":"x y"}`},
		{`a=b=c url=http://h:1/p`, `{"a":"b=c","url":"http://h:1/p"}`},
		{`msg=it\'s empty=`, `{"msg":"it's","empty":""}`},
		{`{"who": "json", "n": 2, "l": [1, 2]}`, `{"who":"json","n":2,"l":[1,2]}`},
		{`{who: flow, n: 2}`, `{"who":"flow","n":2}`},
		{"who: block\nn: 3\n", `{"who":"block","n":3}`},
		{"@" + jsonFile, `{"n":1,"l":[1,"x"]}`},
		{"@" + yamlFile, `{"who":"file","nested":{"a":"b"}}`},
	} {
		got, err := ParseExtraVars(tc.in)
		require.NoError(t, err, tc.in)
		b, err := json.Marshal(got)
		require.NoError(t, err)
		require.JSONEq(t, tc.want, string(b), tc.in)
	}
	for _, bad := range []string{`novalue`, `=x`, `a="unterminated`, `[1, 2]`, `@` + filepath.Join(dir, "none"), `./vars.yml`, `/etc/vars.yml`} {
		_, err := ParseExtraVars(bad)
		require.Error(t, err, bad)
	}
}
