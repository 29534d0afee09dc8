package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/ansible-worker/ansible-worker/runnerstream"
)

func processCommand() *cli.Command {
	return &cli.Command{
		Name:      "process",
		Usage:     "read a worker's result stream on stdin: write the artifacts into PRIVATE_DATA_DIR, print the output",
		ArgsUsage: "PRIVATE_DATA_DIR",
		Description: "The last stage of `transmit | worker | process`, wire-compatible with ansible-runner 2.3.\n" +
			"Unlike ansible-runner's, it exits with the job's result: 0 successful, 1 failed or a broken stream,\n" +
			"3 timeout, 4 canceled.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "ident", Usage: "write the artifacts to PRIVATE_DATA_DIR/artifacts/`ID` (default: PRIVATE_DATA_DIR/artifacts)"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print no playbook output"},
		},
		Action: processAction,
	}
}

func processAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return cli.Exit("process needs one PRIVATE_DATA_DIR", exitUsage)
	}
	dir := c.Args().First()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return cli.Exit(err.Error(), exitUsage)
	}
	// As ansible-runner's process does.
	if f, err := os.OpenFile(filepath.Join(dir, "daemon.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
		f.Close()
	}
	o := runnerstream.ProcessOptions{Ident: c.String("ident")}
	if !c.Bool("quiet") {
		o.Stdout = c.App.Writer
	}
	res, err := runnerstream.Process(c.Context, os.Stdin, dir, o)
	if err != nil {
		return cli.Exit(err.Error(), exitFailed)
	}
	switch res.Status {
	case "successful":
		return nil
	case "timeout":
		return cli.Exit("the job timed out", exitTimeout)
	case "canceled":
		return cli.Exit("the job was canceled", exitCancelled)
	case "error":
		return cli.Exit(fmt.Sprintf("the job did not run: %s", res.Explanation), exitFailed)
	}
	return cli.Exit(fmt.Sprintf("the job %s (rc %d)", orUnknown(res.Status), res.RC), exitFailed)
}

func orUnknown(s string) string {
	if s == "" {
		return "ended without a final status"
	}
	return s
}
