// Package deploy holds the operators' files of pkgroute: Grafana dashboards
// (grafana/) and Prometheus alert rules with their promtool unit tests
// (prometheus/). Its tests check them with promtool and their structure;
// examples/authorsvc checks that every metric they use is exported.
package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/pkgroute/pkgroute/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// promtool returns the path of promtool, or skips t (fails it under
// PKGROUTE_REQUIRE_SERVICES=1) when it is not installed.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		testenv.Unavailable(t, "promtool not installed (Debian package prometheus)")
	}
	return p
}

func runPromtool(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
}

func TestPromtoolCheckRules(t *testing.T) {
	runPromtool(t, "prometheus", "check", "rules", "alerts.yml")
}

func TestPromtoolTestRules(t *testing.T) {
	runPromtool(t, "prometheus", "test", "rules", "alerts_test.yml")
}

// alertBlocks splits alerts.yml into the text of each alert rule, by name.
func alertBlocks(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("prometheus/alerts.yml")
	require.NoError(t, err)
	blocks := map[string]string{}
	var name string
	for _, line := range strings.Split(string(b), "\n") {
		if m := regexp.MustCompile(`^\s*- alert: (\S+)$`).FindStringSubmatch(line); m != nil {
			name = m[1]
			require.NotContains(t, blocks, name, "alert %s defined twice", name)
		} else if strings.HasPrefix(strings.TrimSpace(line), "- name:") {
			name = ""
		}
		if name != "" {
			blocks[name] += line + "\n"
		}
	}
	require.NotEmpty(t, blocks)
	return blocks
}

// TestAlertRulesShape: every rule has a for clause, a severity, a summary, a
// description and a runbook link to a section of deploy/README.md.
func TestAlertRulesShape(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#+ (.+)$`).FindAllStringSubmatch(string(readme), -1) {
		anchors[githubAnchor(m[1])] = true
	}
	for name, block := range alertBlocks(t) {
		assert.Regexp(t, `(?m)^\s+for: \d+[smh]$`, block, name)
		assert.Regexp(t, `(?m)^\s+severity: (critical|warning)$`, block, name)
		assert.Regexp(t, `(?m)^\s+summary: ".+"$`, block, name)
		assert.Regexp(t, `(?m)^\s+description: ".+"$`, block, name)
		m := regexp.MustCompile(`runbook_url: "https://github.com/pkgroute/pkgroute/blob/main/deploy/README.md#([a-z0-9-]+)"`).FindStringSubmatch(block)
		if assert.NotNil(t, m, "%s: runbook_url", name) {
			assert.True(t, anchors[m[1]], "%s: deploy/README.md has no section #%s", name, m[1])
		}
	}
}

// githubAnchor is the fragment GitHub gives a Markdown heading.
func githubAnchor(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	h = regexp.MustCompile("[^a-z0-9 _-]").ReplaceAllString(h, "")
	return strings.ReplaceAll(h, " ", "-")
}

// TestEveryAlertIsUnitTested: alerts_test.yml checks every alert both
// firing (a non-empty exp_alerts) and not firing (exp_alerts: []).
func TestEveryAlertIsUnitTested(t *testing.T) {
	b, err := os.ReadFile("prometheus/alerts_test.yml")
	require.NoError(t, err)
	firing, quiet := map[string]bool{}, map[string]bool{}
	lines := strings.Split(string(b), "\n")
	for i, line := range lines {
		m := regexp.MustCompile(`^\s*alertname: (\S+)$`).FindStringSubmatch(line)
		if m == nil || i+1 == len(lines) {
			continue
		}
		switch strings.TrimSpace(lines[i+1]) {
		case "exp_alerts: []":
			quiet[m[1]] = true
		case "exp_alerts:":
			firing[m[1]] = true
		}
	}
	blocks := alertBlocks(t)
	for name := range blocks {
		assert.True(t, firing[name], "%s: no test where it fires", name)
		assert.True(t, quiet[name], "%s: no test where it does not fire", name)
	}
	for name := range firing {
		assert.Contains(t, blocks, name, "alerts_test.yml tests an alert alerts.yml does not define")
	}
	assert.GreaterOrEqual(t, len(blocks), 20)
}

type dashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Inputs        []struct {
		Name     string `json:"name"`
		PluginID string `json:"pluginId"`
	} `json:"__inputs"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Datasource json.RawMessage `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

func dashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	files, err := filepath.Glob("grafana/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	out := map[string]dashboard{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var d dashboard
		require.NoError(t, json.Unmarshal(b, &d), f)
		out[f] = d
	}
	return out
}

// TestDashboardsShape: importable dashboards (a DS_PROMETHEUS input that
// every panel and variable uses), unique uids and panel ids, panels on the
// 24-column grid, each with at least one query.
func TestDashboardsShape(t *testing.T) {
	uids := map[string]string{}
	for f, d := range dashboards(t) {
		assert.NotEmpty(t, d.Title, f)
		assert.True(t, strings.HasPrefix(d.UID, "pkgroute-"), "%s: uid %q", f, d.UID)
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s and %s share uid %s", f, other, d.UID)
		}
		uids[d.UID] = f
		assert.GreaterOrEqual(t, d.SchemaVersion, 36, f)
		require.Len(t, d.Inputs, 1, f)
		assert.Equal(t, "DS_PROMETHEUS", d.Inputs[0].Name, f)
		assert.Equal(t, "prometheus", d.Inputs[0].PluginID, f)
		for _, v := range d.Templating.List {
			assert.Contains(t, string(v.Datasource), "${DS_PROMETHEUS}", "%s: variable %s", f, v.Name)
		}
		ids := map[int]bool{}
		queries := 0
		for _, p := range d.Panels {
			assert.False(t, ids[p.ID], "%s: panel id %d twice", f, p.ID)
			ids[p.ID] = true
			assert.LessOrEqual(t, p.GridPos.X+p.GridPos.W, 24, "%s: %s", f, p.Title)
			if p.Type == "row" {
				assert.Empty(t, p.Panels, "%s: collapsed row %s", f, p.Title)
				continue
			}
			if assert.NotNil(t, p.Datasource, "%s: %s", f, p.Title) {
				assert.Equal(t, "${DS_PROMETHEUS}", p.Datasource.UID, "%s: %s", f, p.Title)
			}
			assert.NotEmpty(t, p.Targets, "%s: %s", f, p.Title)
			for _, q := range p.Targets {
				assert.NotEmpty(t, q.Expr, "%s: %s", f, p.Title)
				queries++
			}
		}
		assert.Positive(t, queries, f)
	}
	assert.Len(t, uids, 6, "overview, websocket, auth, rate limits, audit, database")
}

// grafanaVariable matches the dashboards' variables: $__rate_interval,
// $__range, $job, $instance.
var grafanaVariable = regexp.MustCompile(`\$(__rate_interval|__interval|__range|\w+)`)

// TestDashboardQueriesParse has promtool parse every dashboard query, as
// recording rules of a temporary rule file, with Grafana's variables
// replaced by values of the right kind.
func TestDashboardQueriesParse(t *testing.T) {
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboards\n    rules:\n")
	n := 0
	for f, d := range dashboards(t) {
		for _, p := range d.Panels {
			for _, q := range p.Targets {
				expr := grafanaVariable.ReplaceAllStringFunc(q.Expr, func(v string) string {
					if strings.HasPrefix(v, "$__") {
						return "5m"
					}
					return ".*"
				})
				quoted, err := json.Marshal(expr)
				require.NoError(t, err)
				n++
				fmt.Fprintf(&b, "      # %s: %s %s\n      - record: dashboard:query_%d\n        expr: %s\n",
					filepath.Base(f), strings.ReplaceAll(p.Title, "\n", " "), q.RefID, n, quoted)
			}
		}
	}
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "dashboards.yml"), []byte(b.String()), 0o644))
	runPromtool(t, dir, "check", "rules", "dashboards.yml")
	keys := make([]string, 0)
	for f := range dashboards(t) {
		keys = append(keys, f)
	}
	sort.Strings(keys)
	t.Logf("%d queries of %s parse", n, strings.Join(keys, ", "))
}
