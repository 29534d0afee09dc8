package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
)

// bashCompletion asks the binary itself for the candidates
// (--generate-bash-completion), so it never goes stale. Unlike urfave/cli's
// sample it needs no bash-completion package and evaluates nothing the
// user typed.
const bashCompletion = `# bash completion for ansible-worker.
# Load it with: source <(ansible-worker completion bash)
# or install it: ansible-worker completion bash > /etc/bash_completion.d/ansible-worker
_ansible_worker_complete() {
  local cur prog opts
  local -a words
  cur="${COMP_WORDS[COMP_CWORD]}"
  words=("${COMP_WORDS[@]:1:COMP_CWORD-1}")
  prog="${COMP_WORDS[0]/#\~/$HOME}"
  if [[ "$cur" == -* ]]; then
    opts=$("$prog" "${words[@]}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("$prog" "${words[@]}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=()
  local w
  for w in $(compgen -W "$opts" -- "$cur"); do
    COMPREPLY+=("$w")
  done
  return 0
}
complete -o bashdefault -o default -F _ansible_worker_complete ansible-worker
`

// zshCompletion is urfave/cli's zsh script, named for ansible-worker.
const zshCompletion = `#compdef ansible-worker
# zsh completion for ansible-worker.
# Load it with: source <(ansible-worker completion zsh)
# or install it as _ansible-worker in a directory of $fpath.
_ansible_worker() {
  local -a opts
  local cur
  cur=${words[-1]}
  if [[ "$cur" == "-"* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
  fi
  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
if (( $+functions[compdef] )); then
  compdef _ansible_worker ansible-worker
fi
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script for bash, zsh or fish",
		ArgsUsage: "bash|zsh|fish",
		Description: "bash: source <(ansible-worker completion bash)\n" +
			"zsh:  source <(ansible-worker completion zsh)\n" +
			"fish: ansible-worker completion fish > ~/.config/fish/completions/ansible-worker.fish",
		BashComplete: func(c *cli.Context) {
			fmt.Fprintln(c.App.Writer, "bash\nzsh\nfish")
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("completion takes one shell: bash, zsh or fish", exitUsage)
			}
			script, err := completionScript(c.App, c.Args().First())
			if err != nil {
				return cli.Exit(err.Error(), exitUsage)
			}
			fmt.Fprint(c.App.Writer, script)
			return nil
		},
	}
}

// completionScript is the completion script of app for shell.
func completionScript(app *cli.App, shell string) (string, error) {
	switch strings.ToLower(shell) {
	case "bash":
		return bashCompletion, nil
	case "zsh":
		return zshCompletion, nil
	case "fish":
		s, err := app.ToFishCompletion()
		if err != nil {
			return "", fmt.Errorf("fish completion: %w", err)
		}
		return s, nil
	}
	return "", fmt.Errorf("unknown shell %q: use bash, zsh or fish", shell)
}

// completeFilesAfterCommands makes the commands complete their flags, and
// nothing else so the shell completes file names (urfave/cli would offer
// "help" after every command).
func completeFilesAfterCommands(app *cli.App) {
	for _, cmd := range app.Commands {
		if cmd.BashComplete != nil {
			continue
		}
		flags := cli.DefaultCompleteWithFlags(cmd)
		cmd.BashComplete = func(c *cli.Context) {
			// The script passes the word being completed only when it
			// starts with "-"; it is then the argument before the request.
			if n := len(os.Args); n > 2 && strings.HasPrefix(os.Args[n-2], "-") {
				flags(c)
			}
		}
	}
}
