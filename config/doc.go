// Package config is ansible-worker's configuration: the YAML file's types,
// ${VAR} expansion, the RUNNER_NATS_* environment variables, validation
// (every problem at once, each naming its key) and the masking of secrets
// for output and errors.
package config
