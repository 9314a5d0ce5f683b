package metrics

import (
	"github.com/loadshare/loadshare/crm"
	"github.com/prometheus/client_golang/prometheus"
)

// Placer exports what this node's placer rounds did, per VIP, from the
// record the server_load agent keeps (crm.PlacerStats): the placer runs in
// the agent's monitor, a new process each time, so the record is all that
// lasts between rounds. Every node runs rounds; only the DC's apply.
type Placer struct {
	// Stats reads the record: VIP name → stats. An error exports
	// loadshare_placer_record_up 0 and nothing else.
	Stats func() (map[string]crm.PlacerStats, error)
}

var (
	descRecordUp = prometheus.NewDesc("loadshare_placer_record_up",
		"1 when the server_load agent's placer record was read (0 when it could not be; no record, no VIP series).", nil, nil)
	descRounds = prometheus.NewDesc("loadshare_placer_rounds_total",
		"Placer rounds run on this node, by result: applied (wrote own_* changes), balanced (nothing to change), not_dc (another node places), no_buckets, failed.",
		[]string{"vip", "result"}, nil)
	descMoves = prometheus.NewDesc("loadshare_placer_moves_total",
		"Running buckets the rounds applied on this node sent to another node.", []string{"vip"}, nil)
	descWrites = prometheus.NewDesc("loadshare_placer_attribute_writes_total",
		"own_* attributes the rounds applied on this node set or deleted.", []string{"vip"}, nil)
	descLastDuration = prometheus.NewDesc("loadshare_placer_last_round_duration_seconds",
		"How long the last round took: reading the cluster (crm_mon, crm_node; one read for all the VIPs of a monitor) and on the DC writing the attributes.", []string{"vip"}, nil)
	descLastTime = prometheus.NewDesc("loadshare_placer_last_round_timestamp_seconds",
		"When the last round started, Unix time.", []string{"vip"}, nil)
	descLastResult = prometheus.NewDesc("loadshare_placer_last_round_result",
		"1 for the last round's result (why it did nothing, when it did), 0 for the others.", []string{"vip", "result"}, nil)
	descLastMoves = prometheus.NewDesc("loadshare_placer_last_round_moves",
		"Running buckets the last round sent to another node.", []string{"vip"}, nil)
)

// Describe implements prometheus.Collector.
func (p *Placer) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRecordUp, descRounds, descMoves, descWrites, descLastDuration, descLastTime, descLastResult, descLastMoves} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (p *Placer) Collect(ch chan<- prometheus.Metric) {
	stats, err := p.Stats()
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descRecordUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descRecordUp, prometheus.GaugeValue, 1)
	for vip, s := range stats {
		for _, r := range crm.RoundResults {
			ch <- prometheus.MustNewConstMetric(descRounds, prometheus.CounterValue, float64(s.Rounds[r]), vip, r)
			ch <- prometheus.MustNewConstMetric(descLastResult, prometheus.GaugeValue, b2f(s.Last.Result == r), vip, r)
		}
		ch <- prometheus.MustNewConstMetric(descMoves, prometheus.CounterValue, float64(s.Moves), vip)
		ch <- prometheus.MustNewConstMetric(descWrites, prometheus.CounterValue, float64(s.Writes), vip)
		if s.Last.At.IsZero() {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descLastDuration, prometheus.GaugeValue, s.Last.Duration.Seconds(), vip)
		ch <- prometheus.MustNewConstMetric(descLastTime, prometheus.GaugeValue, float64(s.Last.At.UnixNano())/1e9, vip)
		ch <- prometheus.MustNewConstMetric(descLastMoves, prometheus.GaugeValue, float64(s.Last.Moves), vip)
	}
}
