package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ansible-worker/ansible-worker/config"
)

// docCLIName is the hidden command that renders docs/cli.md.
const docCLIName = "__doc-cli"

// configEnvVars are the variables the configuration reads (config/env.go);
// a test checks that every Env constant there is listed.
var configEnvVars = []struct{ Name, Key string }{
	{config.EnvServers, "nats.servers"},
	{config.EnvSubjectID, "nats.subject_id"},
	{config.EnvHeaders, "nats.headers"},
	{config.EnvUsername, "nats.username"},
	{config.EnvPassword, "nats.password"},
	{config.EnvToken, "nats.token"},
	{config.EnvUserCredentials, "nats.user_credentials"},
	{config.EnvNkeysSeed, "nats.nkeys_seed"},
	{config.EnvClientName, "nats.options.name"},
	{config.EnvClientVerbose, "nats.options.verbose"},
	{config.EnvAllowReconnect, "nats.options.allow_reconnect"},
	{config.EnvConnectTimeout, "nats.options.connect_timeout"},
	{config.EnvReconnectTimeWait, "nats.options.reconnect_time_wait"},
	{config.EnvPingInterval, "nats.options.ping_interval"},
	{config.EnvFlushTimeout, "nats.options.flush_timeout"},
	{config.EnvMaxReconnectAttempts, "nats.options.max_reconnect_attempts"},
	{config.EnvMaxOutstandingPings, "nats.options.max_outstanding_pings"},
	{config.EnvFlusherQueueSize, "nats.options.flusher_queue_size"},
	{config.EnvPendingSize, "nats.options.pending_size"},
}

func docCLICommand() *cli.Command {
	return &cli.Command{
		Name:   docCLIName,
		Usage:  "print docs/cli.md, rendered from the command definitions",
		Hidden: true,
		Flags:  []cli.Flag{&cli.StringFlag{Name: "o", Usage: "write to `FILE` instead of stdout"}},
		Action: func(c *cli.Context) error {
			doc := renderCLIDoc(newApp())
			if out := c.String("o"); out != "" {
				if err := os.WriteFile(out, []byte(doc), 0o644); err != nil {
					return cli.Exit(fmt.Sprintf("write %s: %v", out, err), exitFailed)
				}
				return nil
			}
			fmt.Fprint(c.App.Writer, doc)
			return nil
		},
	}
}

// renderCLIDoc renders every command, flag, environment variable and exit
// code of app as Markdown.
func renderCLIDoc(app *cli.App) string {
	app.Setup() // adds help and --version, as Run does
	var b strings.Builder
	fmt.Fprintf(&b, "# The %s command line\n\n", app.Name)
	b.WriteString("<!-- Generated from cmd/ansible-worker by `go generate ./cmd/ansible-worker`; do not edit.\n" +
		"     TestCLIDocUpToDate fails when this file and the code differ. -->\n\n")
	fmt.Fprintf(&b, "`%s [options] [command] [command options] [arguments]`: %s. Without a command it runs a worker (`run`).\n\n", app.Name, app.Usage)
	b.WriteString("- [Commands](#commands)\n- [Global options](#global-options)\n")
	for _, c := range app.VisibleCommands() {
		fmt.Fprintf(&b, "- [`%s %s`](#%s-%s)\n", app.Name, c.Name, app.Name, c.Name)
	}
	b.WriteString("- [Environment variables](#environment-variables)\n- [Exit codes](#exit-codes)\n\n")
	b.WriteString("## Commands\n\n| command | what it does |\n| --- | --- |\n")
	for _, c := range app.VisibleCommands() {
		fmt.Fprintf(&b, "| `%s` | %s |\n", mdCell(strings.TrimSpace(c.Name+" "+c.ArgsUsage)), mdCell(c.Usage))
	}
	b.WriteString("\n## Global options\n\nGiven before the command name. `--config` and `--server` are accepted after it too, and every command takes `--help`.\n\n")
	renderFlags(&b, app.VisibleFlags())
	for _, c := range app.VisibleCommands() {
		fmt.Fprintf(&b, "\n## `%s %s`\n\n%s.\n\n", app.Name, c.Name, capitalize(c.Usage))
		fmt.Fprintf(&b, "```\n%s\n```\n\n", strings.TrimSpace(app.Name+" "+c.Name+" [options] "+c.ArgsUsage))
		if c.Description != "" {
			fmt.Fprintf(&b, "```\n%s\n```\n\n", c.Description)
		}
		renderFlags(&b, c.VisibleFlags())
	}
	renderEnv(&b, app)
	b.WriteString("\n## Exit codes\n\n| code | meaning |\n| --- | --- |\n")
	for _, e := range exitCodes {
		fmt.Fprintf(&b, "| %d | %s |\n", e.Code, mdCell(e.Meaning))
	}
	return b.String()
}

// renderFlags writes a table of flags: names, default, environment
// variables and usage, as --help shows them.
func renderFlags(b *strings.Builder, flags []cli.Flag) {
	if len(flags) == 0 {
		b.WriteString("No options besides `--help`.\n")
		return
	}
	b.WriteString("| option | default | environment | what it does |\n| --- | --- | --- | --- |\n")
	for _, f := range flags {
		df, ok := f.(cli.DocGenerationFlag)
		if !ok {
			continue
		}
		placeholder, usage := splitPlaceholder(df.GetUsage())
		if placeholder == "" && df.TakesValue() {
			placeholder = "value"
		}
		var names []string
		for _, n := range f.Names() {
			dash := "--"
			if len(n) == 1 {
				dash = "-"
			}
			names = append(names, strings.TrimSpace("`"+dash+n+" "+placeholder)+"`")
		}
		def := ""
		if bf, ok := f.(*cli.BoolFlag); !ok || !bf.DisableDefaultText {
			def = df.GetDefaultText()
		}
		if def != "" {
			def = "`" + def + "`"
		}
		var env []string
		for _, e := range df.GetEnvVars() {
			env = append(env, "`"+e+"`")
		}
		if sf, ok := f.(cli.DocGenerationSliceFlag); ok && sf.IsSliceFlag() {
			usage += " (repeatable)"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", strings.Join(names, ", "), mdCell(def), strings.Join(env, ", "), mdCell(usage))
	}
}

// renderEnv lists every environment variable the command line reads.
func renderEnv(b *strings.Builder, app *cli.App) {
	b.WriteString("\n## Environment variables\n\n| variable | what it does |\n| --- | --- |\n")
	seen := map[string]bool{}
	flagEnv := func(flags []cli.Flag) {
		for _, f := range flags {
			df, ok := f.(cli.DocGenerationFlag)
			if !ok {
				continue
			}
			for _, e := range df.GetEnvVars() {
				if !seen[e] {
					seen[e] = true
					fmt.Fprintf(b, "| `%s` | the default of `--%s` |\n", e, f.Names()[0])
				}
			}
		}
	}
	flagEnv(app.VisibleFlags())
	for _, c := range app.VisibleCommands() {
		flagEnv(c.VisibleFlags())
	}
	fmt.Fprintf(b, "| `%s` | `run`: the systemd notification socket; the worker sends `READY=1` there once it takes tasks (a unit can use `Type=notify`) |\n", envNotifySocket)
	for _, e := range configEnvVars {
		fmt.Fprintf(b, "| `%s` | sets `%s` over the configuration file (see [configuration.md](configuration.md)) |\n", e.Name, e.Key)
	}
	b.WriteString("| any `${VAR}` of the configuration file | expanded into the file; an unset one is an error that names it |\n")
}

// splitPlaceholder takes the back-quoted placeholder out of a usage
// string, as urfave/cli does for --help.
func splitPlaceholder(usage string) (string, string) {
	i := strings.IndexByte(usage, '`')
	if i < 0 {
		return "", usage
	}
	j := strings.IndexByte(usage[i+1:], '`')
	if j < 0 {
		return "", usage
	}
	name := usage[i+1 : i+1+j]
	return name, usage[:i] + name + usage[i+2+j:]
}

func mdCell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
