package worker

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// Config.EventColor decides the playbook's colour settings: forced on (the
// worker's pipes are no terminal), or off as before.
func TestEventColorSetting(t *testing.T) {
	for _, color := range []bool{true, false} {
		dir := t.TempDir()
		cfg := Config{Group: "g", WorkerID: "w1", PlaybookDir: dir, DataDir: filepath.Join(t.TempDir(), "data"),
			AnsiblePlaybook: "/bin/true", EventColor: color}
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		w, err := New(cfg, Ports{Source: &fakeSource{}, Ledger: newFakeLedger(), Cancels: fakeCancels{}, Sinks: &fakeSinks{}}, log)
		require.NoError(t, err)

		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "ANSIBLE_") {
				env = append(env, kv)
			}
		}
		var out []string
		p := &Process{
			Executable: "/bin/sh",
			Args:       []string{"-c", `echo "force=$ANSIBLE_FORCE_COLOR nocolor=$ANSIBLE_NOCOLOR"`},
			Dir:        dir, Env: env, PluginDir: t.TempDir(), Ident: "color", KillGrace: time.Second,
			OnEvent: func(ev *schemas.Event) { out = append(out, ev.Stdout) },
		}
		_, err = w.execProcess(context.Background(), p)
		require.NoError(t, err)
		want := "force= nocolor=1"
		if color {
			want = "force=1 nocolor="
		}
		require.Equal(t, []string{want}, out, "event_color %v", color)
	}
}

func TestStripANSI(t *testing.T) {
	// Lines of ansible-runner events.
	for in, want := range map[string]string{
		"\x1b[0;31mERROR! the error\x1b[0m": "ERROR! the error",
		"\x1b[0;31m\x1b[0m":                 "",
		"\x1b[0;32mok: [localhost] => {\x1b[0m\n\x1b[0;32m    \"msg\": \"é\"\x1b[0m":       "ok: [localhost] => {\n    \"msg\": \"é\"",
		"\x1b[0;32mlocalhost\x1b[0m                  : \x1b[0;32mok=4   \x1b[0m changed=0": "localhost                  : ok=4    changed=0",
		"plain [text]": "plain [text]",
	} {
		require.Equal(t, want, StripANSI(in))
	}
}
