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
	a := ocf.New(name)
	if a == nil {
		return ocf.Meta{}, fmt.Errorf("%q: not an agent of loadshare (%s)", name, strings.Join(crm.Agents, ", "))
	}
	m := a.Meta()
	if m.Name == "" {
		m.Name = name
	}
	return m, nil
}
