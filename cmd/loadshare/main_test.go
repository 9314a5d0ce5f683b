package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestUnknownCommandIsUsageError(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := cli([]string{"no-such-command"}, &out, &errOut); code != 2 {
		t.Fatalf("cli(no-such-command) = %d, want 2", code)
	}
	if !strings.Contains(errOut.String(), `unknown command "no-such-command"`) {
		t.Fatalf("stderr %q does not name the unknown command", errOut.String())
	}
}
