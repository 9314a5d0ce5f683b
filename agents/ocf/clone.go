package ocf

import (
	"fmt"
	"strconv"
	"time"
)

// Clone is what Pacemaker tells an instance of a clone about itself, from
// OCF_RESKEY_CRM_meta_clone, _clone_max, _clone_node_max and _globally_unique.
// For a primitive that is not cloned, IsClone is false and the rest is zero.
type Clone struct {
	IsClone        bool
	Instance       int  // this instance's number, 0 .. Max-1 (the K of rsc:K)
	Max            int  // clone-max: instances in the whole cluster
	NodeMax        int  // clone-node-max: instances allowed on one node
	GloballyUnique bool // globally-unique=true: instances are distinct (rsc:0, rsc:1, ...)
}

const metaPrefix = reskeyPrefix + "CRM_meta_"

// parseMeta reads the clone and operation meta attributes. Pacemaker writes
// them, so a malformed one is a configuration error naming the attribute.
func parseMeta(env map[string]string) (c Clone, timeout, interval time.Duration, err error) {
	num := func(key string) (int, error) {
		v, ok := env[metaPrefix+key]
		if !ok || v == "" {
			return 0, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("meta attribute %s=%q: not a non-negative integer: %w", key, v, ErrConfigured)
		}
		return n, nil
	}
	if v, ok := env[metaPrefix+"clone"]; ok && v != "" {
		c.IsClone = true
	}
	if _, ok := env[metaPrefix+"clone_max"]; ok {
		c.IsClone = true
	}
	if c.Instance, err = num("clone"); err != nil {
		return
	}
	if c.Max, err = num("clone_max"); err != nil {
		return
	}
	if c.NodeMax, err = num("clone_node_max"); err != nil {
		return
	}
	if v := env[metaPrefix+"globally_unique"]; v != "" {
		if c.GloballyUnique, err = ParseBool(v); err != nil {
			err = fmt.Errorf("meta attribute globally_unique=%q: %v: %w", v, err, ErrConfigured)
			return
		}
	}
	ms := func(key string) (time.Duration, error) {
		n, err := num(key)
		return time.Duration(n) * time.Millisecond, err // Pacemaker passes milliseconds
	}
	if timeout, err = ms("timeout"); err != nil {
		return
	}
	interval, err = ms("interval")
	return
}
