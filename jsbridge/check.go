package jsbridge

import (
	"context"
	"fmt"
	"strings"
)

// A Difference is one setting of a stream, bucket, object store or
// consumer whose value on the server is not what the configuration wants.
type Difference struct {
	// Setting is the setting's name as the nats CLI shows it: replicas,
	// max_age, ack_wait.
	Setting string
	// Server is the value on the server, Want the configuration's, both as
	// printed.
	Server, Want string
	// Source is the configuration key that sets the value
	// ("nats.replicas"); "" when ansible-worker itself needs it.
	Source string
	// Fixed: provisioning cannot change it in place; the asset's fix says
	// what to do.
	Fixed bool
	// loose: a worker does not refuse to start over it (provisioning still
	// sets it).
	loose bool
}

// conflict is the difference as a worker reports it.
func (d Difference) conflict() string {
	if d.Source == "" {
		return fmt.Sprintf("%s is %s on the server, ansible-worker needs %s", d.Setting, d.Server, d.Want)
	}
	return fmt.Sprintf("%s is %s on the server, %s says %s", d.Setting, d.Server, d.Source, d.Want)
}

// change is the difference as provisioning reports it.
func (d Difference) change() string { return d.Setting + " " + d.Server + " → " + d.Want }

// A Conflict is an asset whose settings on the server contradict the
// configuration.
type Conflict struct {
	// Asset is the kind and name: "stream ANSIBLE_EVENTS".
	Asset string
	// Differences are the contradicting settings.
	Differences []Difference
	// Fix says what to do about the Fixed differences.
	Fix string
}

// ConflictError is a refusal to use assets that exist with settings that
// contradict the configuration: a worker never changes them, since other
// workers share them.
type ConflictError struct {
	Conflicts []Conflict
}

// provisionCommand is how Error names the command that changes settings.
const provisionCommand = "ansible-worker provision"

func (e *ConflictError) Error() string { return e.Explain(provisionCommand) }

// Explain names every difference, one line each, and the fix: run
// provision (the command line that changes the settings, for example
// `ansible-worker provision -c /etc/ansible-worker/config.yaml`), or,
// for a setting it cannot change, what the asset's fix says.
func (e *ConflictError) Explain(provision string) string {
	var lines []string
	updatable := 0
	for _, c := range e.Conflicts {
		for _, d := range c.Differences {
			line := c.Asset + ": " + d.conflict()
			if d.Fixed {
				line += "; " + c.Fix
			} else {
				updatable++
			}
			lines = append(lines, line)
		}
	}
	run := fmt.Sprintf("run %q to change", provision)
	if len(lines) == 1 {
		if updatable == 1 {
			return lines[0] + "; " + run + " it"
		}
		return lines[0]
	}
	out := "the JetStream assets on the NATS server contradict this configuration:\n  " + strings.Join(lines, "\n  ")
	if updatable > 0 {
		out += "\n" + run + " them, for every worker that shares them"
	}
	return out
}

// Action is what provisioning did, or would do, to an asset.
type Action string

// The actions of a Change.
const (
	ActionCreated   Action = "created"
	ActionUpdated   Action = "updated"
	ActionUnchanged Action = "unchanged"
)

// A Change is what provisioning did, or would do, to one asset.
type Change struct {
	// Asset is the kind and name: "stream ANSIBLE_TASKS".
	Asset  string
	Action Action
	// Replicas of a created asset.
	Replicas int
	// Changed are the settings updated (ActionUpdated).
	Changed []Difference
	// Blocked are settings that differ but cannot be changed in place:
	// they were left as they are; Fix says what to do.
	Blocked []Difference
	Fix     string
}

// Lines is the change as the provision command prints it, one line per
// action; dryRun words it as what would be done.
func (c Change) Lines(dryRun bool) []string {
	var out []string
	switch c.Action {
	case ActionCreated:
		out = append(out, fmt.Sprintf("%s %s (replicas %d)", verb("created", "would create", dryRun), c.Asset, c.Replicas))
	case ActionUpdated:
		out = append(out, fmt.Sprintf("%s %s: %s", verb("updated", "would update", dryRun), c.Asset, changes(c.Changed)))
	default:
		if len(c.Blocked) == 0 {
			out = append(out, "unchanged "+c.Asset)
		}
	}
	if len(c.Blocked) > 0 {
		out = append(out, fmt.Sprintf("cannot change %s: %s; %s", c.Asset, changes(c.Blocked), c.Fix))
	}
	return out
}

// conflict is the change's contradictions for a worker: every difference
// but the loose ones.
func (c Change) conflict() (Conflict, bool) {
	out := Conflict{Asset: c.Asset, Fix: c.Fix}
	for _, d := range append(append([]Difference(nil), c.Changed...), c.Blocked...) {
		if !d.loose {
			out.Differences = append(out.Differences, d)
		}
	}
	return out, len(out.Differences) > 0
}

func verb(done, dry string, dryRun bool) string {
	if dryRun {
		return dry
	}
	return done
}

func changes(ds []Difference) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.change()
	}
	return strings.Join(parts, ", ")
}

// Report is what provisioning did, or in a dry run would do, to each
// asset, in order.
type Report struct {
	DryRun  bool
	Changes []Change
}

// Lines is the report as the provision command prints it.
func (r Report) Lines() []string {
	var out []string
	for _, c := range r.Changes {
		out = append(out, c.Lines(r.DryRun)...)
	}
	return out
}

// Blocked counts the settings left as they are because they cannot be
// changed in place.
func (r Report) Blocked() int {
	n := 0
	for _, c := range r.Changes {
		n += len(c.Blocked)
	}
	return n
}

// setting is one setting of an asset's configuration C (a stream's or a
// consumer's) that provisioning manages.
type setting[C any] struct {
	name   string // as the nats CLI shows it
	source string // the configuration key; "" when ansible-worker needs it
	want   string // the wanted value, printed
	// wantFor, when set, prints the wanted value given the server's
	// configuration instead.
	wantFor func(*C) string
	// get prints the server's value.
	get func(*C) string
	// holds reports that the server's configuration has what is wanted
	// (nil: get prints want).
	holds func(*C) bool
	// set puts the wanted value in a configuration.
	set func(*C)
	// fixed reports that the value cannot be changed in place from what
	// the server has (nil: it can).
	fixed func(*C) bool
	// loose: a worker does not refuse to start over it.
	loose bool
}

// differs compares the setting with c.
func (s setting[C]) differs(c *C) (Difference, bool) {
	ok := s.get(c) == s.want
	if s.holds != nil {
		ok = s.holds(c)
	}
	if ok {
		return Difference{}, false
	}
	want := s.want
	if s.wantFor != nil {
		want = s.wantFor(c)
	}
	return Difference{Setting: s.name, Server: s.get(c), Want: want, Source: s.source,
		Fixed: s.fixed != nil && s.fixed(c), loose: s.loose}, true
}

// always is a fixed func for settings JetStream never changes in place.
func always[C any](*C) bool { return true }

// asset is one stream, bucket, object store or consumer: how to read,
// create and update it. Make one with newAsset; each is used once.
type asset struct {
	label    string // kind and name: "stream ANSIBLE_TASKS"
	replicas int    // of a new one
	fix      string // what to do about a setting that cannot change in place
	// read loads the asset's configuration; found is false when it does
	// not exist.
	read func(ctx context.Context) (found bool, err error)
	// diff compares what read loaded with what is wanted.
	diff func() []Difference
	// create makes it as wanted; it fails when it exists with other
	// settings.
	create func(ctx context.Context) error
	// update sets, from what read loaded, every differing setting that is
	// not fixed, and nothing else.
	update func(ctx context.Context) error
}

// newAsset makes the asset of configuration type C: load returns nil when
// it does not exist; store writes an updated configuration.
func newAsset[C any](label string, replicas int, fix string, settings []setting[C],
	load func(context.Context) (*C, error), create func(context.Context) error, store func(context.Context, C) error) *asset {
	var cur *C
	return &asset{
		label: label, replicas: replicas, fix: fix, create: create,
		read: func(ctx context.Context) (bool, error) {
			c, err := load(ctx)
			cur = c
			return c != nil, err
		},
		diff: func() []Difference {
			var out []Difference
			for _, s := range settings {
				if d, ok := s.differs(cur); ok {
					out = append(out, d)
				}
			}
			return out
		},
		update: func(ctx context.Context) error {
			c := *cur
			for _, s := range settings {
				if d, ok := s.differs(&c); ok && !d.Fixed {
					s.set(&c)
				}
			}
			return store(ctx, c)
		},
	}
}
