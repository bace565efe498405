import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

const root = join(__dirname, '..', '..');
const lint = JSON.parse(readFileSync(join(root, 'ci', 'metrics.lint.json'), 'utf8')) as { required_metrics: { name: string; type: string }[]; optional_metrics: { name: string; type: string }[] };
const rules = parse(readFileSync(join(root, 'ops', 'prometheus', 'llama-orch-alerts.yaml'), 'utf8')) as { groups: { name: string; rules: { alert: string; expr: string; for?: string }[] }[] };
const PROMQL_KEYWORDS = new Set(['by', 'on', 'without', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset']);

/** Metric names a PromQL expression reads: identifiers that are not functions, keywords, labels or literals. */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/\b(by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/"[^"]*"/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b\d+(\.\d+)?(e-?\d+)?\b/g, ' ');
  const names = [...stripped.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?/g)].flatMap((match) => (match[2] || PROMQL_KEYWORDS.has(match[1] ?? '') ? [] : [match[1] ?? '']));
  return [...new Set(names)];
}

test('ORCH-3041: the shipped alerting rules alert on SLO breach and on the breaker, and each has an expression', () => {
  const alerts = rules.groups.flatMap((group) => group.rules);
  expect(alerts.map((rule) => rule.alert)).toEqual(expect.arrayContaining(['LlamaOrchSloBreach', 'LlamaOrchBatchThroughputLow', 'LlamaOrchCircuitBreakerOpen']));
  for (const rule of alerts) expect(rule.expr.length).toBeGreaterThan(0);
});

test('ORCH-3041 OC-METRICS-7101: every metric an alert expression reads exists in ci/metrics.lint.json (histograms by their series)', () => {
  const known = new Set<string>();
  for (const metric of [...lint.required_metrics, ...lint.optional_metrics]) {
    known.add(metric.name);
    if (metric.type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) known.add(`${metric.name}${suffix}`);
  }
  const unknown = rules.groups.flatMap((group) => group.rules).flatMap((rule) => metricNames(rule.expr).filter((name) => !known.has(name)).map((name) => `${rule.alert}: ${name}`));
  expect(unknown).toEqual([]);
  // The check has teeth: a misspelt metric is caught.
  expect(metricNames('rate(tasks_rejectd_total[5m]) > 0').filter((name) => !known.has(name))).toEqual(['tasks_rejectd_total']);
});

test('ORCH-3028: the Grafana dashboard only charts metrics of the lint file', () => {
  const dashboard = JSON.parse(readFileSync(join(root, 'ops', 'grafana', 'llama-orch-dashboard.json'), 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
  const known = new Set([...lint.required_metrics, ...lint.optional_metrics].flatMap((metric) => (metric.type === 'histogram' ? [`${metric.name}_bucket`, `${metric.name}_sum`, `${metric.name}_count`] : [metric.name])));
  const unknown = dashboard.panels.flatMap((panel) => panel.targets.flatMap((target) => metricNames(target.expr).filter((name) => !known.has(name)).map((name) => `${panel.title}: ${name}`)));
  expect(unknown).toEqual([]);
  expect(dashboard.panels.length).toBeGreaterThan(10);
});
