package attrs

import (
	"os"
	"testing"
)

// Outside a Pacemaker process tree there is no attrd to name; the reader
// of /proc/PID/stat itself is checked on this very process.
func TestAttrdStampOutsidePacemaker(t *testing.T) {
	if a, c := DaemonStamps(); a != "" || c != "" {
		t.Errorf("DaemonStamps in a test process = %q, %q, want none", a, c)
	}
	comm, start, ppid := procStat(os.Getpid())
	if comm == "" || start == "" || ppid != os.Getppid() {
		t.Errorf("procStat(self) = %q, %q, %d; want this test's name, a start time and parent %d", comm, start, ppid, os.Getppid())
	}
}
