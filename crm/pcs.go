package crm

import (
	"fmt"
	"strings"
)

// Pcs returns the configuration as pcs commands, one a line, for the
// clusters (RHEL and its rebuilds, SUSE with pcs) that are configured with
// pcs rather than crmsh. pcs has no resource templates, so every bucket
// primitive carries the shared parameters, meta attributes and ops
// itself; the resource and constraint ids and the rules are those of
// Crmsh and XML. --no-default-ops keeps pcs from adding an op for every
// action of the meta-data: the ops are exactly the model's. Lines
// starting with # are comments (sh ignores them too).
func (s Spec) Pcs() (string, error) { return Specs{s}.Pcs() }

// Pcs returns the configuration of every VIP as pcs commands.
func (ss Specs) Pcs() (string, error) {
	m, err := ss.model()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	m.header(&b)
	b.WriteString("# Apply to a copy of the CIB and push it once, so no bucket starts before its rules exist:\n" +
		"#   pcs cluster cib vip.xml && sed 's/^pcs /pcs -f vip.xml /' vip.pcs | sh -e && pcs cluster cib-push vip.xml --config\n")
	for _, p := range m.props {
		b.WriteString(p.comment())
		b.WriteString("pcs property set" + pcsPairs([]Param{p.Param}) + "\n")
	}
	for _, a := range m.attrs {
		b.WriteString(pcsCreate(a) + " clone " + a.clone + pcsPairs(a.cloneMeta) + "\n")
	}
	for _, v := range m.vips {
		b.WriteString(stickinessComment(v.spec))
		for _, k := range v.buckets {
			b.WriteString(pcsCreate(v.resolved(k)) + "\n")
		}
		for _, l := range v.rules {
			fmt.Fprintf(&b, "pcs constraint location %s rule id=%s constraint-id=%s score=%s %s\n",
				shellQuote("regexp%"+l.pattern), l.ruleID, l.id, scoreText(l.score), l.expression())
		}
		if f := v.flood; f != nil {
			b.WriteString(pcsCreate(*f) + " clone " + f.clone + pcsPairs(f.cloneMeta) + "\n")
		}
	}
	return b.String(), nil
}

// pcsCreate is "pcs resource create ID ocf:loadshare:AGENT params
// --no-default-ops [meta ...] [op ...]".
func pcsCreate(p primitive) string {
	var b strings.Builder
	fmt.Fprintf(&b, "pcs resource create %s ocf:loadshare:%s%s --no-default-ops", p.id, p.agent, pcsPairs(p.params))
	if len(p.meta) > 0 {
		b.WriteString(" meta" + pcsPairs(p.meta))
	}
	for i, o := range p.ops {
		if i == 0 {
			b.WriteString(" op")
		}
		fmt.Fprintf(&b, " %s interval=%s timeout=%s", o.name, o.interval, o.timeout)
		if o.noPending {
			b.WriteString(" record-pending=false")
		}
	}
	return b.String()
}

// pcsPairs is " a=1 b='x y'", each pair one shell word.
func pcsPairs(ps []Param) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(" " + shellQuote(p.Name+"="+p.Value))
	}
	return b.String()
}

// shellQuote makes s one sh word: as it is when it holds only characters
// sh takes literally, else in single quotes.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_./:@,+%=-", r))
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
