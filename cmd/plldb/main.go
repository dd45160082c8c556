// Command plldb debugs AWS Lambda functions written in Python from the developer's own editor: it relays real
// invocations to the local source tree and runs them under debugpy. This file only wires subcommands together.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "plldb:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: plldb <command> [flags]")
	}
	return fmt.Errorf("unknown command %q", args[0])
}
