package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"
)

// Environment variables of ansible-runner's NATS event emitter.
const (
	EnvServers              = "RUNNER_NATS_SERVERS"
	EnvSubjectID            = "RUNNER_NATS_SUBJECT_ID"
	EnvHeaders              = "RUNNER_NATS_HEADERS"
	EnvUsername             = "RUNNER_NATS_USERNAME"
	EnvPassword             = "RUNNER_NATS_PASSWORD"
	EnvToken                = "RUNNER_NATS_TOKEN"
	EnvUserCredentials      = "RUNNER_NATS_USER_CREDENTIALS"
	EnvNkeysSeed            = "RUNNER_NATS_NKEYS_SEED"
	EnvClientName           = "RUNNER_NATS_CLIENT_NAME"
	EnvClientVerbose        = "RUNNER_NATS_CLIENT_VERBOSE"
	EnvAllowReconnect       = "RUNNER_NATS_ALLOW_RECONNECT"
	EnvConnectTimeout       = "RUNNER_NATS_CONNECT_TIMEOUT"
	EnvReconnectTimeWait    = "RUNNER_NATS_RECONNECT_TIME_WAIT"
	EnvPingInterval         = "RUNNER_NATS_PING_INTERVAL"
	EnvFlushTimeout         = "RUNNER_NATS_FLUSH_TIMEOUT"
	EnvMaxReconnectAttempts = "RUNNER_NATS_MAX_RECONNECT_ATTEMPTS"
	EnvMaxOutstandingPings  = "RUNNER_MAX_OUTSTANDING_PINGS" // no NATS_ infix, as upstream
	EnvFlusherQueueSize     = "RUNNER_NATS_FLUSHER_QUEUE_SIZE"
	EnvPendingSize          = "RUNNER_NATS_PENDING_SIZE"
)

// applyEnv applies the RUNNER_NATS_* variables over c. An empty variable
// counts as unset. Error messages name the variable, never its value.
func (c *Config) applyEnv(env func(string) (string, bool)) error {
	r := &envReader{env: env}
	r.applyConnection(&c.NATS)
	r.applyOptions(&c.NATS.Options)
	return errors.Join(r.problems...)
}

// applyConnection applies the variables of the servers, the subjects, the
// headers and the credentials over n.
func (r *envReader) applyConnection(n *NATSConfig) {
	if v, ok := r.get(EnvServers); ok {
		n.Servers = splitList(v)
	}
	r.str(EnvSubjectID, &n.SubjectID)
	if v, ok := r.get(EnvHeaders); ok {
		h, err := ParseHeaders(v)
		if err != nil {
			r.problems = append(r.problems, fmt.Errorf("%s: %w", EnvHeaders, err))
		} else {
			if n.Headers == nil {
				n.Headers = map[string]string{}
			}
			maps.Copy(n.Headers, h)
		}
	}
	r.str(EnvUsername, &n.Username)
	r.str(EnvPassword, &n.Password)
	r.str(EnvToken, &n.Token)
	r.str(EnvUserCredentials, &n.UserCredentials)
	r.str(EnvNkeysSeed, &n.NkeysSeed)
}

// applyOptions applies the variables of the client options over o.
func (r *envReader) applyOptions(o *NATSClientOptions) {
	r.str(EnvClientName, &o.Name)
	if b, ok := r.boolean(EnvClientVerbose); ok {
		o.Verbose = b
	}
	if b, ok := r.boolean(EnvAllowReconnect); ok {
		o.AllowReconnect = &b
	}
	r.duration(EnvConnectTimeout, &o.ConnectTimeout)
	r.duration(EnvReconnectTimeWait, &o.ReconnectTimeWait)
	r.duration(EnvPingInterval, &o.PingInterval)
	r.duration(EnvFlushTimeout, &o.FlushTimeout)
	if n, ok := r.integer(EnvMaxReconnectAttempts); ok {
		o.MaxReconnectAttempts = &n
	}
	if n, ok := r.integer(EnvMaxOutstandingPings); ok {
		o.MaxOutstandingPings = n
	}
	if n, ok := r.integer(EnvFlusherQueueSize); ok {
		o.FlusherQueueSize = n
	}
	if n, ok := r.integer(EnvPendingSize); ok {
		o.PendingSize = n
	}
}

// envReader reads environment variables and collects the problems of
// their values.
type envReader struct {
	env      func(string) (string, bool)
	problems []error
}

// get returns the value of the variable name; an empty or blank variable
// counts as unset.
func (r *envReader) get(name string) (string, bool) {
	v, ok := r.env(name)
	if !ok || strings.TrimSpace(v) == "" {
		return "", false
	}
	return v, true
}

// str sets *dst to the variable name when it is set.
func (r *envReader) str(name string, dst *string) {
	if v, ok := r.get(name); ok {
		*dst = v
	}
}

// boolean returns the variable name as a boolean (see truthy), and
// whether it is set.
func (r *envReader) boolean(name string) (bool, bool) {
	v, ok := r.get(name)
	return ok && truthy(v), ok
}

// duration sets *dst to the variable name, a number of seconds, when it
// is set and valid.
func (r *envReader) duration(name string, dst *float64) {
	v, ok := r.get(name)
	if !ok {
		return
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		r.problems = append(r.problems, fmt.Errorf("%s must be a number of seconds", name))
		return
	}
	*dst = f
}

// integer returns the variable name as an integer, and whether it is set
// and valid.
func (r *envReader) integer(name string) (int, bool) {
	v, ok := r.get(name)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		r.problems = append(r.problems, fmt.Errorf("%s must be an integer", name))
		return 0, false
	}
	return n, true
}

// ParseHeaders parses RUNNER_NATS_HEADERS: "k=v,k2=v2". Spaces around keys
// and values are dropped and a value may contain "=". Errors say which
// entry is wrong but never repeat a value.
func ParseHeaders(s string) (map[string]string, error) {
	out := map[string]string{}
	for i, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("entry %d is not key=value", i+1)
		}
		out[k] = strings.TrimSpace(v)
	}
	return out, nil
}

// truthy is the boolean of ansible-runner's NATS emitter: true, yes, y, 1
// and on (any case) are true, anything else is false.
func truthy(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "y", "1", "on":
		return true
	}
	return false
}
