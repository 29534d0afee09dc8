package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ansible-worker/ansible-worker/runnerstream"
)

func transmitCommand() *cli.Command {
	return &cli.Command{
		Name:      "transmit",
		Usage:     "write a job (a private data directory and its run flags) as ansible-runner's transmit stream on stdout",
		ArgsUsage: "PRIVATE_DATA_DIR",
		Description: "The first stage of `transmit | worker | process`, wire-compatible with ansible-runner 2.3:\n" +
			"  ansible-worker transmit ./demo -p test.yml | ansible-worker worker | ansible-worker process ./demo\n" +
			"Unlike ansible-runner, -i is the inventory; the run's identifier is --ident.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "playbook", Aliases: []string{"p"}, Usage: "`PLAYBOOK` relative to the project directory", Required: true},
			&cli.StringFlag{Name: "ident", Usage: "run `ID`: names the artifacts directory (default: a random UUID)"},
			&cli.StringSliceFlag{Name: "inventory", Aliases: []string{"i"}, Usage: "inventory `PATH` relative to the private data directory (default: <dir>/inventory); repeatable"},
			&cli.StringFlag{Name: "limit", Aliases: []string{"l"}, Usage: "host `PATTERN`"},
			&cli.IntFlag{Name: "forks", Aliases: []string{"f"}, Usage: "`N` parallel processes", DefaultText: "Ansible's, 5"},
			&cli.BoolFlag{Name: "v", Usage: "more output: -v, -vv, -vvv or -vvvv, as in ansible-playbook"},
			&cli.BoolFlag{Name: "vv", Hidden: true}, &cli.BoolFlag{Name: "vvv", Hidden: true}, &cli.BoolFlag{Name: "vvvv", Hidden: true},
			&cli.StringFlag{Name: "cmdline", Usage: "more ansible-playbook `OPTIONS`, as env/cmdline holds them"},
			&cli.StringFlag{Name: "roles-path", Usage: "roles `PATH`s (colon separated)"},
			&cli.StringFlag{Name: "project-dir", Usage: "project `DIR` (default: <dir>/project)"},
		},
		Action: transmitAction,
	}
}

func transmitAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return cli.Exit("transmit needs one PRIVATE_DATA_DIR", exitUsage)
	}
	dir := c.Args().First()
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return cli.Exit(fmt.Sprintf("%s is not a directory", dir), exitUsage)
	}
	kw := transmitKwargs(c)
	if err := runnerstream.Transmit(c.Context, c.App.Writer, dir, kw); err != nil {
		return cli.Exit(err.Error(), exitFailed)
	}
	return nil
}

// transmitKwargs are the run arguments of the flags, as ansible-runner's
// transmit sends them.
func transmitKwargs(c *cli.Context) runnerstream.Kwargs {
	kw := runnerstream.Kwargs{Ident: c.String("ident"), Playbook: c.String("playbook"), Limit: c.String("limit"),
		Cmdline: c.String("cmdline"), ProjectDir: c.String("project-dir")}
	if kw.Ident == "" {
		kw.Ident = runnerstream.NewIdent()
	}
	if inv := c.StringSlice("inventory"); len(inv) == 1 {
		kw.Inventory = inv[0]
	} else if len(inv) > 1 {
		kw.Inventory = inv
	}
	if c.IsSet("forks") {
		f := c.Int("forks")
		kw.Forks = &f
	}
	if n := countV(c); n > 0 {
		kw.Verbosity = &n
	}
	if rp := c.String("roles-path"); rp != "" {
		kw.RolesPath = strings.Split(rp, ":")
	}
	return kw
}
