package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ansible-worker/ansible-worker/jsbridge"
)

func validateCommand() *cli.Command {
	return &cli.Command{
		Name:   "validate",
		Usage:  "check the configuration and print it with secrets masked; exit 0 or 2",
		Flags:  withCommon(),
		Action: validateAction,
	}
}

func validateAction(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	if _, err := cfg.LoadJobs(); err != nil {
		return cli.Exit(err.Error(), exitUsage)
	}
	if cfg.NATS.Embedded.Enabled {
		if err := jsbridge.CheckEmbedded(cfg); err != nil {
			return cli.Exit(err.Error(), exitUsage)
		}
	}
	out, err := cfg.YAML()
	if err != nil {
		return cli.Exit(err.Error(), exitUsage)
	}
	fmt.Fprint(c.App.Writer, string(out))
	for _, a := range cfg.Advice() {
		fmt.Fprintln(c.App.ErrWriter, "warning: "+a)
	}
	fmt.Fprintln(c.App.ErrWriter, "configuration is valid")
	return nil
}
