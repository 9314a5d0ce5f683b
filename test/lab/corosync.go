package lab

import (
	"fmt"
	"strings"
)

// corosyncConf renders corosync.conf for the lab. Corosync's parser wants one
// key per line. knet carries crypto; the key is per lab (authkey).
func corosyncConf(cluster string, tokenMS int, nodes []string, addrs []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "totem {\n version: 2\n cluster_name: %s\n transport: knet\n", cluster)
	fmt.Fprintf(&b, " crypto_cipher: aes256\n crypto_hash: sha256\n token: %d\n}\n", tokenMS)
	b.WriteString("nodelist {\n")
	for i, n := range nodes {
		fmt.Fprintf(&b, " node {\n  ring0_addr: %s\n  name: %s\n  nodeid: %d\n }\n", addrs[i], n, i+1)
	}
	b.WriteString("}\nquorum {\n provider: corosync_votequorum\n}\n")
	b.WriteString("logging {\n to_logfile: yes\n logfile: /var/log/cluster/corosync.log\n to_syslog: no\n to_stderr: no\n timestamp: on\n}\n")
	return b.String()
}

// seedCIB is the initial CIB of every node. dc-deadtime=2s brings a fresh
// cluster to quorum with a DC in about 5 s instead of about 23 s. Its
// validate-with must not name a schema newer than the installed Pacemaker's.
//
// A lab that fences keeps Pacemaker's defaults, stonith-enabled=true and
// no-quorum-policy=stop, as production must, with stonith-action=off: a
// fenced node stays off (a power cut, the same as Lab.Crash) until a test
// or the operator boots it. A lab without the fence agent (Config.Fence
// empty: the tests of the bare cluster) has no fence device, and Pacemaker
// with stonith-enabled=true would start no resource and try forever to
// fence a crashed node, so it sets stonith-enabled=false.
func seedCIB(fencing bool) string {
	opt := `<nvpair id="opt-stonith" name="stonith-enabled" value="false"/>`
	if fencing {
		opt = `<nvpair id="opt-stonith-action" name="stonith-action" value="off"/>`
	}
	return `<cib validate-with="pacemaker-3.0" epoch="1" num_updates="0" admin_epoch="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="opt-dc-deadtime" name="dc-deadtime" value="2s"/>
        ` + opt + `
      </cluster_property_set>
    </crm_config>
    <nodes/>
    <resources/>
    <constraints/>
  </configuration>
  <status/>
</cib>
`
}
