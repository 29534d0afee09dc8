// Package schemas holds ansible-worker's wire types: the task request users
// submit, the TaskStatus kept in KV, the ansible-runner style runner statuses
// and job events, and the configuration file. Every type validates itself, so
// the rest of the program can trust what it receives from here.
package schemas
