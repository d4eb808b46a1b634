package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/current-vpn/current/ctl"
)

// TestGrafanaDashboard checks that every family the dashboard queries is
// one the daemon exports, and in aggregate-only mode too unless the
// query groups by peer.
func TestGrafanaDashboard(t *testing.T) {
	data, err := os.ReadFile("../packaging/grafana/current.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	st := hubStatus(2)
	names := func(fams []ctl.Family) map[string]bool {
		m := map[string]bool{}
		for _, f := range fams {
			m[f.Name] = true
			if f.Type == ctl.HistogramType {
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					m[f.Name+s] = true
				}
			}
		}
		return m
	}
	perPeer := names(ctl.Families(st, ctl.VersionInfo{}))
	aggregate := names(ctl.Aggregate(ctl.Families(st, ctl.VersionInfo{})))
	family := regexp.MustCompile(`\bcurrent_[a-z_]+`)
	queries := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			queries++
			for _, name := range family.FindAllString(tg.Expr, -1) {
				if !perPeer[name] {
					t.Errorf("panel %q queries %s, which the daemon does not export", p.Title, name)
				}
				if !aggregate[name] && !strings.Contains(tg.Expr, "by (peer)") {
					t.Errorf("panel %q queries %s, which aggregate-only mode drops", p.Title, name)
				}
			}
		}
	}
	if queries < 10 {
		t.Errorf("only %d queries in the dashboard", queries)
	}
}
