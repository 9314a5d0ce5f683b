package ocf

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// newLogger builds the logger an action gets, following ocf-shellfuncs'
// ha_log: every line goes to stderr (pacemaker-execd captures an agent's
// stderr into its own log, tagged with the operation), to HA_LOGFILE when
// set, and to syslog at HA_LOGFACILITY when set and not "none". Pacemaker
// exports its logging options as HA_logfile/HA_logfacility/HA_debug; the
// upper-case forms are the older spelling, honoured too. HA_debug=1 adds
// debug lines. close releases the log file and syslog connection.
func newLogger(env map[string]string, stderr io.Writer, agent, instance, action string) (l *slog.Logger, close func()) {
	level := slog.LevelInfo
	if v := firstEnv(env, "HA_debug", "HA_DEBUG"); v != "" && v != "0" {
		level = slog.LevelDebug
	}
	var hs []slog.Handler
	var closers []io.Closer
	hs = append(hs, &lineHandler{mu: new(sync.Mutex), w: stderr, level: level}) // the executor stamps the time
	if path := firstEnv(env, "HA_LOGFILE", "HA_logfile"); path != "" {
		// Open failures (e.g. meta-data run as nobody) leave the file out:
		// logging must never make an action fail.
		if f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640); err == nil {
			hs = append(hs, &lineHandler{mu: new(sync.Mutex), w: f, level: level, stamp: true})
			closers = append(closers, f)
		}
	}
	if fac := firstEnv(env, "HA_LOGFACILITY", "HA_logfacility"); fac != "" && fac != "none" {
		if p, ok := facility(fac); ok {
			if w, err := syslog.New(p|syslog.LOG_INFO, agent); err == nil {
				hs = append(hs, &lineHandler{level: level, noLevel: true, emit: syslogEmit(w)})
				closers = append(closers, w)
			}
		}
	}
	l = slog.New(fanout(hs)).With("agent", agent, "instance", instance, "action", action)
	return l, func() {
		for _, c := range closers {
			c.Close()
		}
	}
}

func firstEnv(env map[string]string, keys ...string) string {
	for _, k := range keys {
		if v := env[k]; v != "" {
			return v
		}
	}
	return ""
}

func facility(name string) (syslog.Priority, bool) {
	m := map[string]syslog.Priority{
		"kern": syslog.LOG_KERN, "user": syslog.LOG_USER, "mail": syslog.LOG_MAIL,
		"daemon": syslog.LOG_DAEMON, "auth": syslog.LOG_AUTH, "syslog": syslog.LOG_SYSLOG,
		"lpr": syslog.LOG_LPR, "news": syslog.LOG_NEWS, "uucp": syslog.LOG_UUCP,
		"cron": syslog.LOG_CRON, "authpriv": syslog.LOG_AUTHPRIV, "ftp": syslog.LOG_FTP,
		"local0": syslog.LOG_LOCAL0, "local1": syslog.LOG_LOCAL1, "local2": syslog.LOG_LOCAL2,
		"local3": syslog.LOG_LOCAL3, "local4": syslog.LOG_LOCAL4, "local5": syslog.LOG_LOCAL5,
		"local6": syslog.LOG_LOCAL6, "local7": syslog.LOG_LOCAL7,
	}
	p, ok := m[strings.ToLower(name)]
	return p, ok
}

// lineHandler writes one line per record, the way ocf-shellfuncs' ocf_log
// does ("ERROR: message"), so Pacemaker's log stays readable:
//
//	ERROR: start failed: own bucket 3 of 10.0.0.1: ... agent=clustervip instance=vip:3 action=start rc=OCF_ERR_GENERIC
//
// The "err" attribute follows the message after a colon, unquoted; other
// attributes are key=value, quoted only when they need it. stamp prefixes
// the time (for HA_LOGFILE); noLevel drops the level (syslog has its own).
type lineHandler struct {
	mu      *sync.Mutex
	w       io.Writer
	level   slog.Level
	stamp   bool
	noLevel bool
	attrs   []slog.Attr
	emit    func(slog.Level, string) error // instead of w, for syslog
}

func (h *lineHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	if h.stamp {
		b.WriteString(r.Time.Format(time.RFC3339Nano))
		b.WriteByte(' ')
	}
	if !h.noLevel {
		b.WriteString(levelName(r.Level))
		b.WriteString(": ")
	}
	b.WriteString(r.Message)
	var rest []slog.Attr
	add := func(a slog.Attr) bool {
		if a.Key == "err" {
			b.WriteString(": ")
			b.WriteString(a.Value.String())
		} else {
			rest = append(rest, a)
		}
		return true
	}
	r.Attrs(add)
	rest = append(rest, h.attrs...) // the logger's context (agent, instance, action) last
	for _, a := range rest {
		b.WriteByte(' ')
		b.WriteString(a.Key)
		b.WriteByte('=')
		b.WriteString(quoteIfNeeded(a.Value.String()))
	}
	if h.emit != nil {
		return h.emit(r.Level, b.String())
	}
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *lineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

// WithGroup is not used by the agents; groups are flattened.
func (h *lineHandler) WithGroup(string) slog.Handler { return h }

func levelName(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARNING"
	case l >= slog.LevelInfo:
		return "INFO"
	}
	return "DEBUG"
}

func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n\"=") {
		return strconv.Quote(s)
	}
	return s
}

// fanout sends each record to every handler that wants it.
type fanout []slog.Handler

func (f fanout) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range f {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (f fanout) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	for _, h := range f {
		if h.Enabled(ctx, r.Level) {
			errs = append(errs, h.Handle(ctx, r.Clone()))
		}
	}
	return errors.Join(errs...)
}

func (f fanout) WithAttrs(as []slog.Attr) slog.Handler {
	g := make(fanout, len(f))
	for i, h := range f {
		g[i] = h.WithAttrs(as)
	}
	return g
}

func (f fanout) WithGroup(name string) slog.Handler {
	g := make(fanout, len(f))
	for i, h := range f {
		g[i] = h.WithGroup(name)
	}
	return g
}

func syslogEmit(w *syslog.Writer) func(slog.Level, string) error {
	return func(l slog.Level, msg string) error {
		switch {
		case l >= slog.LevelError:
			return w.Err(msg)
		case l >= slog.LevelWarn:
			return w.Warning(msg)
		case l >= slog.LevelInfo:
			return w.Info(msg)
		}
		return w.Debug(msg)
	}
}
