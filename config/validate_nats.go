package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/nats-io/nkeys"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// validateNATS returns the problems of the nats section.
func validateNATS(n NATSConfig) problems {
	var p problems
	for i, s := range n.Servers {
		if err := checkServerURL(s); err != nil {
			p.addf("nats.servers[%d]: %s %w", i, RedactURL(s), err)
		}
	}
	if n.SubjectID != "" && n.SubjectID != "hostname" {
		p.add(schemas.CheckID("nats.subject_id", n.SubjectID))
	}
	checkHeaders(&p, n.Headers)
	p.nonNegativeSeconds("nats.status_ttl", n.StatusTTL)
	p.nonNegativeSeconds("nats.events_max_age", n.EventsMaxAge)
	p.nonNegativeSeconds("nats.jobs_max_age", n.JobsMaxAge)
	checkTasksLimits(&p, n)
	if n.MQTTListener != "" {
		if err := checkHostPort(n.MQTTListener, 1); err != nil {
			p.addf("nats.mqtt_listener: %w", err)
		}
	}
	checkClientOptions(&p, n.Options)
	checkAuth(&p, n)
	checkTLS(&p, n.TLS)
	if n.Replicas < 1 || n.Replicas > 5 {
		p.addf("nats.replicas: %d is out of range 1-5", n.Replicas)
	}
	checkEmbedded(&p, n.Embedded)
	return p
}

// checkHeaders checks the names and values of nats.headers, in the order
// of their names.
func checkHeaders(p *problems, headers map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(headers)) {
		switch {
		case k == "":
			p.addf("nats.headers: a header name is empty")
		case !printable(k) || strings.ContainsAny(k, ": "):
			p.addf("nats.headers: header name %q may contain only printable characters other than ':' and space", k)
		}
		if !printable(headers[k]) {
			p.addf("nats.headers.%s: the value may contain only printable characters", k)
		}
	}
}

// checkTasksLimits checks the limits of the tasks stream.
func checkTasksLimits(p *problems, n NATSConfig) {
	if n.TasksMaxMsgSize < 1 || n.TasksMaxMsgSize > math.MaxInt32 {
		p.addf("nats.tasks_max_msg_size: must be 1 to %d bytes, got %d", math.MaxInt32, n.TasksMaxMsgSize)
	}
	if n.TasksMaxBytes != -1 && n.TasksMaxBytes < int64(n.TasksMaxMsgSize) {
		p.addf("nats.tasks_max_bytes: must be -1 (no limit) or at least nats.tasks_max_msg_size (%d bytes), got %d",
			n.TasksMaxMsgSize, n.TasksMaxBytes)
	}
	if !(n.TasksMaxAge == 0 || n.TasksMaxAge >= 1) || math.IsInf(n.TasksMaxAge, 0) {
		p.addf("nats.tasks_max_age: must be 0 (for ever) or 1 second or more")
	}
}

// checkClientOptions checks nats.options.
func checkClientOptions(p *problems, o NATSClientOptions) {
	p.nonNegativeSeconds("nats.options.connect_timeout", o.ConnectTimeout)
	p.nonNegativeSeconds("nats.options.reconnect_time_wait", o.ReconnectTimeWait)
	if math.IsNaN(o.PingInterval) || math.IsInf(o.PingInterval, 0) {
		p.addf("nats.options.ping_interval: must be a number of seconds")
	}
	p.nonNegativeSeconds("nats.options.flush_timeout", o.FlushTimeout)
	if o.MaxReconnectAttempts != nil && *o.MaxReconnectAttempts < -1 {
		p.addf("nats.options.max_reconnect_attempts: must be -1 (forever) or more")
	}
	if o.MaxOutstandingPings < 0 {
		p.addf("nats.options.max_outstanding_pings: must be 0 (default) or more")
	}
	if o.FlusherQueueSize < 0 {
		p.addf("nats.options.flusher_queue_size: must be 0 or more")
	}
	if o.PendingSize < -1 {
		p.addf("nats.options.pending_size: must be -1 (no buffer), 0 (default) or more bytes")
	}
}

// checkAuth checks the ways to authenticate: each one given must be
// complete, and only one may be given.
func checkAuth(p *problems, n NATSConfig) {
	var methods []string
	if n.Token != "" {
		methods = append(methods, "nats.token")
	}
	if n.Username != "" || n.Password != "" {
		methods = append(methods, "nats.username/nats.password")
		if n.Username == "" {
			p.addf("nats.password: is set but nats.username is empty")
		}
	}
	if n.NkeysSeed != "" {
		methods = append(methods, "nats.nkeys_seed")
		checkNkeysSeed(p, n)
	}
	if n.UserCredentials != "" {
		methods = append(methods, "nats.user_credentials")
		p.add(checkFile("nats.user_credentials", n.UserCredentials))
	}
	if len(methods) > 1 {
		p.addf("nats: give only one way to authenticate, not %s", strings.Join(methods, " and "))
	}
}

// checkNkeysSeed checks that nats.nkeys_seed is a user seed or a file.
// Its messages never repeat the value: it may be a mistyped seed.
func checkNkeysSeed(p *problems, n NATSConfig) {
	if !n.NkeysSeedInline() {
		if st, err := os.Stat(n.NkeysSeed); err != nil || st.IsDir() {
			p.addf("nats.nkeys_seed: is neither an nkey seed nor a readable file")
		}
		return
	}
	if kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(n.NkeysSeed))); err == nil {
		if pub, err := kp.PublicKey(); err != nil || !nkeys.IsValidPublicUserKey(pub) {
			p.addf("nats.nkeys_seed: is not a user seed (it must start with SU)")
		}
	}
}

// checkTLS checks nats.tls: its files exist and the certificate and key
// come together.
func checkTLS(p *problems, t NATSTLSConfig) {
	if t.CAFile != "" {
		p.add(checkFile("nats.tls.ca_file", t.CAFile))
	}
	if t.CertFile != "" {
		p.add(checkFile("nats.tls.cert_file", t.CertFile))
	}
	if t.KeyFile != "" {
		p.add(checkFile("nats.tls.key_file", t.KeyFile))
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		p.addf("nats.tls: cert_file and key_file must be given together")
	}
}

// checkEmbedded checks nats.embedded when the embedded server is enabled.
func checkEmbedded(p *problems, e EmbeddedConfig) {
	if !e.Enabled {
		return
	}
	if err := checkHostPort(e.Listen, -1); err != nil {
		p.addf("nats.embedded.listen: %w", err)
	}
	if e.MQTTListen != "" {
		if err := checkHostPort(e.MQTTListen, -1); err != nil {
			p.addf("nats.embedded.mqtt_listen: %w", err)
		}
	}
	if e.StoreDir == "" {
		p.addf("nats.embedded.store_dir: must not be empty")
	}
	if e.ConfigFile != "" {
		if st, err := os.Stat(e.ConfigFile); err != nil {
			p.addf("nats.embedded.config_file: %w", err)
		} else if !st.Mode().IsRegular() {
			p.addf("nats.embedded.config_file: %s is not a regular file", e.ConfigFile)
		}
	}
}

// checkServerURL checks one NATS server URL. Its messages never contain
// the URL (the caller adds it, redacted).
func checkServerURL(s string) error {
	raw := s
	if !strings.Contains(raw, "://") {
		raw = "nats://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("is not a valid URL")
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return fmt.Errorf("has scheme %q: use nats, tls, ws or wss", u.Scheme)
	}
	if u.Hostname() == "" {
		return errors.New("has no host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return errors.New("has a bad port")
		}
	}
	return nil
}

// printable reports whether every character of s is printable.
func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
