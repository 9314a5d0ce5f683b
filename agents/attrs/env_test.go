package attrs

import (
	"os"
	"testing"
)

// Outside a Pacemaker process tree there is no attrd to name; the reader
// of /proc/PID/stat itself is checked on this very process.
func TestAttrdStampOutsidePacemaker(t *testing.T) {
	if got := AttrdStamp(); got != "" {
		t.Errorf("AttrdStamp in a test process = %q, want \"\"", got)
	}
	comm, start, ppid := procStat(os.Getpid())
	if comm == "" || start == "" || ppid != os.Getppid() {
		t.Errorf("procStat(self) = %q, %q, %d; want this test's name, a start time and parent %d", comm, start, ppid, os.Getppid())
	}
}
