package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
)

// newFlagSet is the one constructor of a command's flags: parse errors and
// -h go to stderr, the command's usage text above the flag list. What it
// makes is also what `loadshare man` documents (see recordFlagSets), so the
// man page cannot drift from the flags the commands parse.
func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(fs.Output(), usage); fs.PrintDefaults() }
	recorder.Lock()
	if recorder.sets != nil {
		*recorder.sets = append(*recorder.sets, flagSet{fs, usage})
	}
	recorder.Unlock()
	return fs
}

// parseFlags parses a command that takes no positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: %w", fs.Arg(0), errUsage)
	}
	return nil
}

// flagSet is one command's flags and usage text, as newFlagSet made them.
type flagSet struct {
	*flag.FlagSet
	usage string
}

var recorder struct {
	sync.Mutex
	sets *[]flagSet
}

// recordFlagSets runs a command with -h (which every command answers
// before doing anything) and returns the flag sets it made. One recording
// at a time: recorder is shared by the package.
func recordFlagSets(c command, args ...string) []flagSet {
	var sets []flagSet
	recorder.Lock()
	recorder.sets = &sets
	recorder.Unlock()
	_ = c.run(append(args, "-h"), io.Discard, io.Discard)
	recorder.Lock()
	recorder.sets = nil
	recorder.Unlock()
	return sets
}
