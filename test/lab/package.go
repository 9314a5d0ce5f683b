package lab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/loadshare/loadshare/crm"
)

// InstallPackage installs a loadshare .deb on node as an operator would:
// dpkg -i, into the node's own root (its dpkg database there says what is
// installed; the host's is untouched), and the node runs the agents the
// package put in /usr/lib/ocf/resource.d/loadshare: each replaces the one
// in the node's provider directory by a rename, as dpkg replaces files, so
// an agent process running meanwhile finishes with the old binary and the
// next action starts the new one. Installing a newer package over an older
// one is the upgrade. The package's dependencies (pacemaker-cli-utils) are
// the host's, so dpkg is told not to look for them.
// Equivalent to: dpkg --root=NODEROOT --force-depends -i DEB
func (l *Lab) InstallPackage(node, deb string) error {
	if _, err := l.index(node); err != nil {
		return err
	}
	root := filepath.Join(l.dir(node), "pkgroot")
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	for _, f := range []string{"var/lib/dpkg/status", "var/lib/dpkg/available"} {
		p := filepath.Join(root, f)
		if _, err := os.Stat(p); os.IsNotExist(err) {
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				return err
			}
		}
	}
	if out, err := exec.Command("dpkg", "--root="+root, "--force-depends", "-i", deb).CombinedOutput(); err != nil {
		return fmt.Errorf("install %s on %s: dpkg: %w: %s", filepath.Base(deb), node, err, strings.TrimSpace(string(out)))
	}
	ocf := filepath.Join(l.dir(node), "ocf")
	for _, a := range crm.Agents {
		if err := copyFile(filepath.Join(root, "usr/lib/ocf/resource.d/loadshare", a), filepath.Join(ocf, a), 0o755); err != nil {
			return fmt.Errorf("install %s on %s: %w", filepath.Base(deb), node, err)
		}
	}
	if err := copyFile(filepath.Join(root, "usr/sbin/loadshare"), filepath.Join(ocf, ".loadshare"), 0o755); err != nil {
		return fmt.Errorf("install %s on %s: %w", filepath.Base(deb), node, err)
	}
	return nil
}

// PackageVersion is the version of loadshare the node's dpkg database has
// installed (InstallPackage), "" if none.
// Equivalent to: dpkg-query --root=NODEROOT -W -f '${Version}' loadshare
func (l *Lab) PackageVersion(node string) (string, error) {
	root := filepath.Join(l.dir(node), "pkgroot")
	out, err := exec.Command("dpkg-query", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-W", "-f", "${Version}", "loadshare").Output()
	if err != nil {
		return "", nil
	}
	return strings.TrimSpace(string(out)), nil
}
