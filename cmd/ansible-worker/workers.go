package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/ansible-worker/ansible-worker/client"
	"github.com/ansible-worker/ansible-worker/jsbridge"
)

func workersCommand() *cli.Command {
	return &cli.Command{
		Name:  "workers",
		Usage: "list the live workers of every group: concurrency, running tasks, tasks ended by state, version",
		Flags: withCommon(&cli.BoolFlag{Name: "json", Usage: "print the list as JSON"}),
		Action: func(c *cli.Context) error {
			return withClient(c, func(cl *client.Client) error {
				ws, err := cl.AllWorkers(c.Context)
				if err != nil {
					return err
				}
				return printWorkers(c.App.Writer, ws, c.Bool("json"))
			})
		},
	}
}

// printWorkers writes the workers as a table, or as JSON.
func printWorkers(out io.Writer, ws []jsbridge.WorkerInfo, asJSON bool) error {
	if asJSON {
		if ws == nil {
			ws = []jsbridge.WorkerInfo{}
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(ws)
	}
	if len(ws) == 0 {
		fmt.Fprintln(out, "no worker is running")
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tWORKER\tCONCURRENCY\tRUNNING\tSUCCESS\tFAILED\tCANCELLED\tTIMEOUT\tVERSION")
	for _, w := range ws {
		st := w.Stats
		if st == nil {
			st = &jsbridge.WorkerStats{}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", w.Group, w.ID, w.Concurrency, st.Running,
			st.Ended["success"], st.Ended["failed"], st.Ended["cancelled"], st.Ended["timeout"], w.Version)
	}
	return tw.Flush()
}
