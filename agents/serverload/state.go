package serverload

import (
	"time"

	"github.com/loadshare/loadshare/agents/attrs"
	"github.com/loadshare/loadshare/crm"
	"github.com/loadshare/loadshare/loadmon"
)

// state is an instance's state file (attrs.Load, Save): it exists from
// start to stop and carries, between monitors (each one a new process),
// the load model and the placer's record. ReadPlacerStats reads it too.
type state struct {
	attrs.Published
	Model *loadmon.State `json:"model,omitempty"`       // the load model between monitors
	Probe string         `json:"probe_error,omitempty"` // last database probe error, logged once
	// Per placed VIP, the ideal targets and since when (placeBuckets)
	Ideals map[string]Ideal `json:"ideals,omitempty"`
	// Per placed VIP, what its rounds on this node did (the metrics read it)
	Placer map[string]*crm.PlacerStats `json:"placer,omitempty"`
	// Why the last metrics textfile was not written ("": it was), logged once
	Textfile string `json:"textfile_error,omitempty"`
}

// Ideal is a placer's ideal targets (as text) and when they were first
// seen: once they have held long enough, the placer goes to them.
type Ideal struct {
	Targets string    `json:"targets"`
	Since   time.Time `json:"since"`
}
