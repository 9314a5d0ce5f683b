package crm

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// PlacerVIP is one VIP the in-cluster placer places: what server_load's
// placer parameter says for it. Its text form is one word,
//
//	NAME[:key=value[,key=value]…]
//
// with the keys require (writable_monit or readable_monit), idle-load,
// full-load, min-share, min-buckets, max-buckets, hysteresis and
// writer-weight: the flags of `loadshare crm place`, which mean the same.
// A key not given keeps DefaultPolicy's value. Example, a writer VIP and a
// reader VIP that gives the primary half its share:
//
//	vip ro:require=readable_monit,writer-weight=50
type PlacerVIP struct {
	Name    string
	Require string // AttrWritable or AttrReadable
	Policy  Policy
}

// Spec is the placer's view of the VIP: its name and required attribute
// (the bucket count is read from the cluster).
func (v PlacerVIP) Spec() Spec { return Spec{Name: v.Name, Require: v.Require} }

// policyKeys are the keys of a placer word that set a Policy field.
var policyKeys = []struct {
	key   string
	field func(*Policy) *int
}{
	{"idle-load", func(p *Policy) *int { return &p.IdleLoad }},
	{"full-load", func(p *Policy) *int { return &p.FullLoad }},
	{"min-share", func(p *Policy) *int { return &p.MinShare }},
	{"min-buckets", func(p *Policy) *int { return &p.MinBuckets }},
	{"max-buckets", func(p *Policy) *int { return &p.MaxBuckets }},
	{"hysteresis", func(p *Policy) *int { return &p.Hysteresis }},
	{"writer-weight", func(p *Policy) *int { return &p.WriterWeight }},
}

// ParsePlacer reads server_load's placer parameter: space-separated
// PlacerVIP words. Errors name the word and the key.
func ParsePlacer(s string) ([]PlacerVIP, error) {
	var out []PlacerVIP
	seen := map[string]bool{}
	for _, word := range strings.Fields(s) {
		name, opts, _ := strings.Cut(word, ":")
		if !ValidName(name) {
			return nil, fmt.Errorf("%q: %q is not a VIP resource prefix (letters, digits and '-', starting with a letter)", word, name)
		}
		if seen[name] {
			return nil, fmt.Errorf("%q: VIP %s named twice", word, name)
		}
		seen[name] = true
		v := PlacerVIP{Name: name, Require: AttrWritable, Policy: DefaultPolicy}
		if opts != "" {
			for _, kv := range strings.Split(opts, ",") {
				if err := v.set(kv); err != nil {
					return nil, fmt.Errorf("%q: %w", word, err)
				}
			}
		}
		if err := v.Policy.Validate(); err != nil {
			return nil, fmt.Errorf("%q: %w", word, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func (v *PlacerVIP) set(kv string) error {
	k, val, ok := strings.Cut(kv, "=")
	if !ok {
		return fmt.Errorf("%q: want key=value", kv)
	}
	if k == "require" {
		if Requires[val] == "" {
			return fmt.Errorf("require=%q: want %s or %s", val, AttrWritable, AttrReadable)
		}
		v.Require = val
		return nil
	}
	for _, pk := range policyKeys {
		if pk.key == k {
			n, err := strconv.Atoi(val)
			if err != nil {
				return fmt.Errorf("%s=%q: not an integer", k, val)
			}
			*pk.field(&v.Policy) = n
			return nil
		}
	}
	return fmt.Errorf("unknown key %q (want require, %s)", k, strings.Join(policyKeyNames(), ", "))
}

// String is the word ParsePlacer reads back: the name, then only what
// differs from the defaults.
func (v PlacerVIP) String() string {
	var opts []string
	if v.Require != "" && v.Require != AttrWritable {
		opts = append(opts, "require="+v.Require)
	}
	p, d := v.Policy.norm(), DefaultPolicy.norm()
	for _, pk := range policyKeys {
		if got, def := *pk.field(&p), *pk.field(&d); got != def {
			opts = append(opts, pk.key+"="+strconv.Itoa(got))
		}
	}
	if len(opts) == 0 {
		return v.Name
	}
	return v.Name + ":" + strings.Join(opts, ",")
}

// ParseVIP reads one VIP of a whole configuration, as `loadshare crm
// --vip` takes it: comma-separated key=value with the keys name, ip,
// buckets, nic, cidr-netmask, seed and strict (the VIP's), and those of a placer
// word (require and the policy), e.g.
//
//	name=ro,ip=192.0.2.11,buckets=12,require=readable_monit,writer-weight=50
//
// The result is not validated (Specs.Validate does that, with the rest).
func ParseVIP(s string) (Spec, error) {
	v := PlacerVIP{Require: AttrWritable, Policy: DefaultPolicy}
	var spec Spec
	for _, kv := range strings.Split(s, ",") {
		k, val, ok := strings.Cut(kv, "=")
		if !ok {
			return Spec{}, fmt.Errorf("%q: want key=value", kv)
		}
		var err error
		switch k {
		case "name":
			v.Name = val
		case "ip":
			if spec.IP, err = netip.ParseAddr(val); err != nil {
				err = errors.New("not an IP address")
			}
		case "buckets":
			if spec.Buckets, err = strconv.Atoi(val); err != nil {
				err = errors.New("not an integer")
			}
		case "nic":
			spec.NIC = val
		case "strict":
			if spec.Strict, err = strconv.ParseBool(val); err != nil {
				err = errors.New("not true or false")
			}
		case "cidr-netmask":
			if spec.CIDRNetmask, err = strconv.Atoi(val); err != nil {
				err = errors.New("not an integer")
			}
		case "seed":
			n, perr := strconv.ParseUint(val, 10, 32)
			if perr != nil {
				err = errors.New("not a 32-bit number")
			}
			spec.Seed = uint32(n)
		default:
			err = v.set(kv)
			if err != nil && strings.HasPrefix(err.Error(), "unknown key") {
				err = fmt.Errorf("unknown key %q (want name, ip, buckets, nic, cidr-netmask, seed, strict, require, %s)", k, strings.Join(policyKeyNames(), ", "))
			}
			if err != nil {
				return Spec{}, err
			}
			continue
		}
		if err != nil {
			return Spec{}, fmt.Errorf("%s=%q: %w", k, val, err)
		}
	}
	spec.Name, spec.Require, spec.Policy = v.Name, v.Require, v.Policy
	return spec, nil
}

func policyKeyNames() []string {
	var ks []string
	for _, pk := range policyKeys {
		ks = append(ks, pk.key)
	}
	return ks
}
