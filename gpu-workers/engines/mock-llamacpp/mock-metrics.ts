import type { MockCounters } from './mock-generation';

export interface MockMetricsSnapshot extends Readonly<MockCounters> {
  readonly requestsProcessing: number;
  readonly requestsDeferred: number;
}

interface MetricLine {
  readonly name: string;
  readonly type: 'counter' | 'gauge';
  readonly help: string;
  readonly value: number;
}

/** Prometheus text in llama-server's `--metrics` naming (engines.md §1.3). */
export function renderMockMetrics(snapshot: MockMetricsSnapshot): string {
  const lines: readonly MetricLine[] = [
    { name: 'llamacpp:prompt_tokens_total', type: 'counter', help: 'Number of prompt tokens processed.', value: snapshot.promptTokensTotal },
    { name: 'llamacpp:prompt_seconds_total', type: 'counter', help: 'Prompt process time', value: snapshot.promptSecondsTotal },
    { name: 'llamacpp:tokens_predicted_total', type: 'counter', help: 'Number of generation tokens processed.', value: snapshot.tokensPredictedTotal },
    { name: 'llamacpp:tokens_predicted_seconds_total', type: 'counter', help: 'Predict process time', value: snapshot.tokensPredictedSecondsTotal },
    { name: 'llamacpp:requests_processing', type: 'gauge', help: 'Number of requests processing.', value: snapshot.requestsProcessing },
    { name: 'llamacpp:requests_deferred', type: 'gauge', help: 'Number of requests deferred.', value: snapshot.requestsDeferred },
  ];
  return lines.map((line) => `# HELP ${line.name} ${line.help}\n# TYPE ${line.name} ${line.type}\n${line.name} ${line.value}\n`).join('');
}
