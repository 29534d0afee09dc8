package config

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadConfig writes each input as a configuration file and loads it.
// LoadConfig must never panic, a configuration it accepts must be valid
// and print as YAML, and Masked must hide every secret; a secret in a
// secret variable or in a ${VAR} never appears in an error or the YAML.
func FuzzLoadConfig(f *testing.F) {
	seeds := []string{
		"",
		"log_level: DEBUG\n",
		"mqtt:\n  host: ${HOST}\n  port: ${PORT}\n  password: ${SECRET}\n",
		"worker:\n  group_name: production\n  concurrency: 2\n  allow_playbooks: [a.yml, 'b/*.yml']\n",
		"nats:\n  servers: nats://u:${SECRET}@h:4222, nats://b:4222\n  token: ${SECRET}\n",
		"nats:\n  headers: {a: b}\n  options: {allow_reconnect: false, max_reconnect_attempts: 3, flush_timeout: 0.5}\n",
		"nats:\n  embedded:\n    enabled: true\n    listen: 127.0.0.1:-1\n    mqtt_listen: 127.0.0.1:0\n",
		"a: &a {b: *a}\n",
		"mqtt: &m\n  host: h\nworker:\n  <<: *m\n",
		"x: $${literal} ${UNSET:-dflt}\n",
		"nats:\n  password: ${SECRET}\n  username: u\n",
	}
	if data, err := os.ReadFile(filepath.Join("..", "examples", "config.full.yaml")); err == nil {
		seeds = append(seeds, string(data))
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	env := envMap{"HOST": "example.com", "PORT": "1884", "SECRET": "fuzz-s3cret-value", "EMPTY": ""}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		checkSecretsHidden(t, p, data)
		c, err := LoadConfig(p, env.lookup)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("LoadConfig accepted an invalid configuration: %v", err)
		}
		if _, err := c.YAML(); err != nil {
			t.Fatalf("YAML: %v", err)
		}
		m := c.Masked()
		for _, s := range []string{m.NATS.Password, m.NATS.Token, m.NATS.NkeysSeed, m.MQTT.Password} {
			if s != "" && s != SecretMask {
				t.Fatalf("Masked left a secret")
			}
		}
		for i, s := range m.NATS.Servers {
			if s != SecretMask && s != RedactURL(c.NATS.Servers[i]) || RedactURL(s) != s {
				t.Fatalf("Masked left a server URL unredacted")
			}
		}
		_ = c.ClientServers()
		_ = c.SubjectID()
		_ = c.Worker.ID()
	})
}

// Environments whose secrets reach the configuration only as secrets: from
// ${SECRET} or a RUNNER_NATS_* secret variable. One has a token, so that
// configurations stay valid; the other a password and a bad seed.
var fuzzSecretEnvs = []envMap{
	{"SECRET": "Zq9-fuzz-var", EnvToken: "Zq9-fuzz-token", EnvHeaders: "X-Fuzz=Zq9-fuzz-header"},
	{"SECRET": "Zq9-fuzz-var", EnvUsername: "u", EnvPassword: "Zq9-fuzz-password", EnvNkeysSeed: "Zq9-fuzz-seed"},
}

// checkSecretsHidden loads the file at p again with secrets in the
// environment: neither the error nor the YAML may contain them.
func checkSecretsHidden(t *testing.T, p string, data []byte) {
	if bytes.Contains(data, []byte("Zq9")) {
		return // the file itself has the text: not a secret
	}
	for _, secrets := range fuzzSecretEnvs {
		env := envMap{"HOST": "example.com", "PORT": "1884", "EMPTY": ""}
		maps.Copy(env, secrets)
		var text string
		if c, err := LoadConfig(p, env.lookup); err != nil {
			text = err.Error()
		} else if out, err := c.YAML(); err == nil {
			text = string(out)
		}
		if strings.Contains(text, "Zq9") {
			t.Fatalf("a secret is in the output:\n%s", text)
		}
	}
}
