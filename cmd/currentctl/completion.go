package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"
)

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script",
		UsageText: "currentctl completion bash|zsh|fish",
		Description: "bash:  currentctl completion bash > /etc/bash_completion.d/currentctl\n" +
			"zsh:   currentctl completion zsh > \"${fpath[1]}/_currentctl\"\n" +
			"fish:  currentctl completion fish > ~/.config/fish/completions/currentctl.fish",
		Action: completion,
	}
}

func completion(c *cli.Context) error {
	pos, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	switch pos[0] {
	case "bash":
		_, err = io.WriteString(c.App.Writer, bashCompletion)
	case "zsh":
		_, err = io.WriteString(c.App.Writer, zshCompletion)
	case "fish":
		var s string
		if s, err = c.App.ToFishCompletion(); err == nil {
			_, err = io.WriteString(c.App.Writer, s)
		}
	default:
		return usageError(c, "unknown shell %q (bash, zsh or fish)", pos[0])
	}
	if err != nil {
		return failure(fmt.Errorf("completion: %w", err))
	}
	return nil
}

// The bash and zsh scripts are urfave/cli's (autocomplete/ in its
// repository, not embedded in the module), bound to currentctl: they ask
// the program itself, through --generate-bash-completion, which needs
// EnableBashCompletion on the App.
const bashCompletion = `# bash completion for currentctl
_currentctl_complete() {
  local cur opts
  COMPREPLY=()
  cur="${COMP_WORDS[COMP_CWORD]}"
  if [[ "$cur" == "-"* ]]; then
    opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "${opts}" -- "${cur}"))
  return 0
}
complete -o bashdefault -o default -F _currentctl_complete currentctl
`

const zshCompletion = `#compdef currentctl

_currentctl() {
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

compdef _currentctl currentctl
`
