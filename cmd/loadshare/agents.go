package main

import (
	"fmt"
	"strings"

	// The agents register themselves with package ocf: their declarations
	// are what crm --param is checked against and what man pages say.
	_ "github.com/loadshare/loadshare/agents/clustervip"
	_ "github.com/loadshare/loadshare/agents/mysqlmonitor"
	"github.com/loadshare/loadshare/agents/ocf"
	_ "github.com/loadshare/loadshare/agents/serverload"
	"github.com/loadshare/loadshare/crm"
)

// agentMeta returns the declarations of one of loadshare's agents.
func agentMeta(name string) (ocf.Meta, error) {
	m, err := ocf.MetaOf(name)
	if err != nil {
		return ocf.Meta{}, fmt.Errorf("%q: not an agent of loadshare (%s)", name, strings.Join(crm.Agents, ", "))
	}
	return m, nil
}
