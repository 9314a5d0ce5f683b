package lab

import (
	"context"
	"io"
	"log/slog"
)

// DemoOptions tune Demo.
type DemoOptions struct {
	Keep bool      // leave the lab up at the end
	Out  io.Writer // progress lines and tables
	Log  *slog.Logger
}

// Demo runs the lab demo.
func Demo(ctx context.Context, cfg Config, o DemoOptions) error {
	return nil
}
