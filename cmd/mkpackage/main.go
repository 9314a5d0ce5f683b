// Command mkpackage builds loadshare's .deb and .rpm from a tree that
// `make install DESTDIR=ROOT` staged, with nfpm as a library: nothing is
// downloaded or run at package time. `make deb` and `make rpm` call it.
//
// It is a module of its own so that nfpm and what it pulls in stay out of
// the agents' and the CLI's dependencies (go.mod at the top lists only what
// runs on a cluster node).
//
//	mkpackage -format deb -root bin/pkgroot -version v1.2.3 -out bin/
package main

import (
	"bytes"
	"compress/gzip"
	"debug/buildinfo"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb"
	_ "github.com/goreleaser/nfpm/v2/rpm"
)

//go:embed loadshare.yaml
var config []byte

//go:embed copyright
var copyright string

//go:embed lintian-overrides
var lintianOverrides []byte

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkpackage:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("mkpackage", flag.ContinueOnError)
	format := fl.String("format", "deb", "deb or rpm")
	root := fl.String("root", "", "tree staged by make install DESTDIR=ROOT (required)")
	version := fl.String("version", "", "loadshare's build version, as loadshare --version says (required)")
	arch := fl.String("arch", runtime.GOARCH, "GOARCH of the binaries")
	out := fl.String("out", ".", "directory to write the package into")
	if err := fl.Parse(args); err != nil {
		return err
	}
	switch {
	case *format != "deb" && *format != "rpm":
		return fmt.Errorf("-format %q: want deb or rpm", *format)
	case *root == "":
		return errors.New("-root: required (the tree make install staged)")
	case *version == "":
		return errors.New("-version: required")
	}
	pv, err := packageVersion(*version)
	if err != nil {
		return fmt.Errorf("-version %q: %w", *version, err)
	}
	if err := stage(*root, *version, pv); err != nil {
		return err
	}
	env := map[string]string{"ROOT": *root, "VERSION": pv, "ARCH": *arch}
	// Expanded here, in every field, contents' sources included (nfpm
	// expands those only when each entry says expand: true).
	text := os.Expand(string(config), func(k string) string { return env[k] })
	cfg, err := nfpm.Parse(strings.NewReader(text))
	if err != nil {
		return fmt.Errorf("loadshare.yaml: %w", err)
	}
	info, err := cfg.Get(*format)
	if err != nil {
		return err
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, *format); err != nil {
		return fmt.Errorf("contents: %w", err)
	}
	p, err := nfpm.Get(*format)
	if err != nil {
		return err
	}
	path := filepath.Join(*out, p.ConventionalFileName(info))
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := p.Package(info, f); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("%s: %w", *format, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Println(path)
	return nil
}

// semverish is what a release tag looks like: v1.2.3, v1.2.3-rc1.
var semverish = regexp.MustCompile(`^v?(\d+\.\d+\.\d+)(?:-([0-9A-Za-z.]+))?$`)

// packageVersion turns the build version into one deb and rpm both order
// correctly: v1.2.3 is 1.2.3, v1.2.3-rc1 is 1.2.3~rc1 (before 1.2.3), and
// anything else (a git describe of an untagged commit, "devel") is
// 0.0.0~git.THAT, before every release. Neither format allows "-" in the
// upstream version without meaning a revision, so it becomes ".".
func packageVersion(v string) (string, error) {
	if m := semverish.FindStringSubmatch(v); m != nil {
		if m[2] != "" {
			return m[1] + "~" + m[2], nil
		}
		return m[1], nil
	}
	s := strings.NewReplacer("-", ".", "_", ".").Replace(v)
	if !regexp.MustCompile(`^[0-9A-Za-z.+~]+$`).MatchString(s) {
		return "", errors.New("want a version such as v1.2.3 or a git describe")
	}
	return "0.0.0~git." + s, nil
}

// stage adds to the tree what packages carry beyond make install: the man
// pages gzipped (as Debian policy asks), the copyright file, lintian's
// overrides and a changelog.
func stage(root, version, pv string) error {
	man := filepath.Join(root, "usr/share/man")
	err := filepath.WalkDir(man, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".gz") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := writeGzip(path+".gz", b); err != nil {
			return err
		}
		return os.Remove(path)
	})
	if err != nil {
		return fmt.Errorf("man pages in %s: %w", man, err)
	}
	doc := filepath.Join(root, "usr/share/doc/loadshare")
	if err := os.MkdirAll(doc, 0o755); err != nil {
		return err
	}
	mods, err := linkedModules(filepath.Join(root, "usr/sbin/loadshare"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(doc, "copyright"), []byte(copyright+mods), 0o644); err != nil {
		return err
	}
	over := filepath.Join(root, "usr/share/lintian/overrides")
	if err := os.MkdirAll(over, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(over, "loadshare"), lintianOverrides, 0o644); err != nil {
		return err
	}
	// A native package's changelog (Debian policy 12.7). What changed is in
	// the project's git history; this names the build.
	when := time.Unix(0, 0).UTC()
	if epoch := os.Getenv("SOURCE_DATE_EPOCH"); epoch != "" {
		var sec int64
		if _, err := fmt.Sscan(epoch, &sec); err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", epoch, err)
		}
		when = time.Unix(sec, 0).UTC()
	}
	cl := fmt.Sprintf("loadshare (%s) unstable; urgency=medium\n\n  * Build %s of loadshare; the changes are in the project's git log.\n\n -- loadshare maintainers <loadshare@localhost.invalid>  %s\n",
		pv, version, when.Format(time.RFC1123Z))
	return writeGzip(filepath.Join(doc, "changelog.gz"), []byte(cl))
}

// writeGzip writes b compressed, with no name or time in the header (gzip
// -9n), so the same input gives the same bytes.
func writeGzip(path string, b []byte) error {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(b); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// linkedModules lists the Go modules statically linked into the binary,
// for the copyright file: their licenses travel with their sources.
func linkedModules(bin string) (string, error) {
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return "", fmt.Errorf("build info of %s: %w", bin, err)
	}
	var b strings.Builder
	b.WriteString("Comment:\n The binaries are statically linked Go programs (built with " + bi.GoVersion + ").\n They contain these modules, each under the license in its source:\n")
	for _, d := range bi.Deps {
		fmt.Fprintf(&b, " %s %s\n", d.Path, d.Version)
	}
	return b.String(), nil
}
