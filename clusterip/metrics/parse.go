package metrics

import (
	"fmt"
	"io"
	"sort"
	"strconv"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Remote is one VIP as another node's exposition shows it: what that
// node's kernel held when it was scraped. ParseKernel reads it back from
// the series Kernel writes, so the names live in one file.
type Remote struct {
	Address  string `json:"vip"`
	Buckets  int    `json:"buckets"`
	Owned    []int  `json:"owned"` // ascending
	NewConns uint64 `json:"new_conns"`
	Packets  uint64 `json:"packets"`
	Bytes    uint64 `json:"bytes"`
	Tracked  int    `json:"tracked"`
}

// ParseKernel reads the kernel series of a node's exposition (Prometheus
// text format, as `loadshare metrics`, its /metrics or node_exporter's
// textfile collector serve it; other series are ignored), by address.
// It fails when the text is not the format, or when loadshare_kernel_up
// says the node could not read its kernel.
func ParseKernel(r io.Reader) ([]Remote, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("not the Prometheus text format: %w", err)
	}
	if up := fams[nameUp]; up == nil || len(up.Metric) == 0 {
		return nil, fmt.Errorf("no %s: not a loadshare exposition", nameUp)
	} else if up.Metric[0].GetGauge().GetValue() != 1 {
		return nil, fmt.Errorf("%s 0: the node could not read its kernel", nameUp)
	}
	vips := map[string]*Remote{}
	vip := func(m *dto.Metric) *Remote {
		a := label(m, "address")
		if vips[a] == nil {
			vips[a] = &Remote{Address: a}
		}
		return vips[a]
	}
	each := func(name string, f func(*Remote, *dto.Metric)) {
		if fam := fams[name]; fam != nil {
			for _, m := range fam.Metric {
				f(vip(m), m)
			}
		}
	}
	each(nameBuckets, func(v *Remote, m *dto.Metric) { v.Buckets = int(m.GetGauge().GetValue()) })
	each(nameTracked, func(v *Remote, m *dto.Metric) { v.Tracked = int(m.GetGauge().GetValue()) })
	each(nameOwned, func(v *Remote, m *dto.Metric) {
		if m.GetGauge().GetValue() == 1 {
			if b, err := strconv.Atoi(label(m, "bucket")); err == nil {
				v.Owned = append(v.Owned, b)
			}
		}
	})
	each(nameNew, func(v *Remote, m *dto.Metric) { v.NewConns += uint64(m.GetCounter().GetValue()) })
	each(namePackets, func(v *Remote, m *dto.Metric) { v.Packets += uint64(m.GetCounter().GetValue()) })
	each(nameBytes, func(v *Remote, m *dto.Metric) { v.Bytes += uint64(m.GetCounter().GetValue()) })
	out := make([]Remote, 0, len(vips))
	for _, v := range vips {
		if v.Owned == nil {
			v.Owned = []int{}
		}
		sort.Ints(v.Owned)
		out = append(out, *v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
