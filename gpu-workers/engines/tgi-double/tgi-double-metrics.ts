/**
 * TGI's `/metrics` as the double keeps it: the `tgi_*` names of `docs/source/reference/metrics.md`, recorded where
 * `router/src/server.rs`, `router/src/infer/mod.rs`, `router/src/validation.rs` and `backends/v3/src/{backend,queue}.rs`
 * record them (huggingface/text-generation-inference at db931fcf), in the text `metrics-exporter-prometheus`
 * renders. Like that exporter, a metric appears only once it was first recorded: `tgi_queue_size` and
 * `tgi_batch_current_size` are absent until the first request reached the queue.
 */

/** Bucket bounds as server.rs sets them: 35 geometric duration buckets from 0.00015 s, 100 linear ones for token counts. */
function durationBuckets(): number[] {
  const buckets: number[] = [];
  let value = 0.0001;
  for (let i = 0; i < 35; i++) {
    value *= 1.5;
    buckets.push(value);
  }
  return buckets;
}

function linearBuckets(max: number, count: number): number[] {
  return Array.from({ length: count }, (_, index) => (max / count) * (index + 1));
}

class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(readonly bounds: readonly number[]) {
    this.counts = bounds.map(() => 0);
  }
  record(value: number): void {
    this.sum += value;
    this.count++;
    this.bounds.forEach((bound, index) => {
      if (value <= bound) this.counts[index] = (this.counts[index] ?? 0) + 1;
    });
  }
}

const HELP: Readonly<Record<string, string>> = {
  tgi_request_success: 'Number of successful requests',
  tgi_request_duration: 'Request duration',
  tgi_request_validation_duration: 'Request validation duration',
  tgi_request_queue_duration: 'Request queue duration',
  tgi_request_inference_duration: 'Request inference duration',
  tgi_request_mean_time_per_token_duration: 'Mean time per token per request',
  tgi_request_input_length: 'Input token length per request',
  tgi_request_generated_tokens: 'Generated tokens per request',
  tgi_request_max_new_tokens: 'Maximum new tokens per request',
  tgi_batch_current_size: 'Current batch size',
  tgi_batch_current_max_tokens: 'Maximum tokens for the current batch',
  tgi_queue_size: 'Current queue size',
  tgi_batch_next_size: 'Batch size of the next batch',
};

export type TgiCounter = 'tgi_request_count' | 'tgi_request_success';
export type TgiFailure = 'overloaded' | 'validation' | 'dropped' | 'incomplete';
export type TgiGauge = 'tgi_queue_size' | 'tgi_batch_current_size' | 'tgi_batch_current_max_tokens';
export type TgiHistogram =
  | 'tgi_request_duration'
  | 'tgi_request_validation_duration'
  | 'tgi_request_queue_duration'
  | 'tgi_request_inference_duration'
  | 'tgi_request_mean_time_per_token_duration'
  | 'tgi_request_input_length'
  | 'tgi_request_generated_tokens'
  | 'tgi_request_max_new_tokens'
  | 'tgi_batch_next_size';

export class TgiDoubleMetrics {
  private readonly counters = new Map<string, number>();
  private readonly gauges = new Map<TgiGauge, number>();
  private readonly histograms = new Map<TgiHistogram, Histogram>();
  private readonly bounds: Readonly<Record<TgiHistogram, readonly number[]>>;

  constructor(limits: { readonly maxInputTokens: number; readonly maxTotalTokens: number }) {
    const duration = durationBuckets();
    this.bounds = {
      tgi_request_duration: duration,
      tgi_request_validation_duration: duration,
      tgi_request_queue_duration: duration,
      tgi_request_inference_duration: duration,
      tgi_request_mean_time_per_token_duration: duration,
      tgi_request_input_length: linearBuckets(limits.maxInputTokens, 100),
      tgi_request_generated_tokens: linearBuckets(limits.maxTotalTokens, 100),
      tgi_request_max_new_tokens: linearBuckets(limits.maxTotalTokens, 100),
      tgi_batch_next_size: linearBuckets(1024, 1024),
    };
  }

  increment(name: TgiCounter): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + 1);
  }

  /** `tgi_request_failure{err=…}`, as infer/mod.rs and backend.rs count refusals and dropped clients. */
  fail(reason: TgiFailure): void {
    const key = `tgi_request_failure{err="${reason}"}`;
    this.counters.set(key, (this.counters.get(key) ?? 0) + 1);
  }

  set(name: TgiGauge, value: number): void {
    this.gauges.set(name, value);
  }

  record(name: TgiHistogram, value: number): void {
    let histogram = this.histograms.get(name);
    if (histogram === undefined) {
      histogram = new Histogram(this.bounds[name]);
      this.histograms.set(name, histogram);
    }
    histogram.record(value);
  }

  counter(name: string): number {
    return this.counters.get(name) ?? 0;
  }

  gauge(name: TgiGauge): number | undefined {
    return this.gauges.get(name);
  }

  render(): string {
    const blocks: string[] = [];
    const header = (name: string, type: string): string => `${HELP[name] === undefined ? '' : `# HELP ${name} ${HELP[name]}\n`}# TYPE ${name} ${type}\n`;
    const byName = new Map<string, string[]>();
    for (const [key, value] of this.counters) {
      const name = key.split('{', 1)[0] ?? key;
      byName.set(name, [...(byName.get(name) ?? []), `${key} ${value}`]);
    }
    for (const [name, lines] of byName) blocks.push(`${header(name, 'counter')}${lines.join('\n')}\n`);
    for (const [name, value] of this.gauges) blocks.push(`${header(name, 'gauge')}${name} ${value}\n`);
    for (const [name, histogram] of this.histograms) {
      const lines = histogram.bounds.map((bound, index) => `${name}_bucket{le="${bound}"} ${histogram.counts[index] ?? 0}`);
      lines.push(`${name}_bucket{le="+Inf"} ${histogram.count}`, `${name}_sum ${histogram.sum}`, `${name}_count ${histogram.count}`);
      blocks.push(`${header(name, 'histogram')}${lines.join('\n')}\n`);
    }
    return blocks.join('\n');
  }
}
