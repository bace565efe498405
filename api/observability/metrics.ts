import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Every metric llama-orch exposes and its label set, in one place (style rule 19). Names and label sets
 * are contracts (OC-METRICS-7101): `ci/metrics.lint.json` lists the same, and
 * test/integration/observability.test.ts scrapes a live /metrics and checks both agree.
 */
export const LABEL_BUDGETS = {
  // Spec §4.1, verbatim.
  engine: 4,
  engine_version: 64,
  pool_id: 256,
  replica_id: 1024,
  priority: 8,
  reason: 16,
  // llama-orch's extras (ci/metrics.lint.json lists them too).
  policy: 8,
  device: 16,
  code: 16,
  surface: 2,
  objective: 4,
  tenant: 256,
  metric: 64,
  label: 16,
  outcome: 16,
  process: 64,
} as const;
export type LabelName = keyof typeof LABEL_BUDGETS;

/** The label value a value past its budget is folded into (OC-METRICS-7102). */
export const OVERFLOW_LABEL_VALUE = 'other';

interface MetricDefinition {
  readonly name: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly help: string;
  readonly labels: readonly LabelName[];
  /** Present only where the host can measure it (nvidia-smi); the lint lists these as optional. */
  readonly optional?: boolean;
}

const TASK_LABELS = ['engine', 'engine_version', 'pool_id', 'replica_id'] as const;
const POOL_LABELS = ['engine', 'engine_version', 'pool_id'] as const;

export const METRICS = {
  tasksEnqueued: { name: 'tasks_enqueued_total', type: 'counter', help: 'Tasks accepted into a queue.', labels: [...TASK_LABELS, 'priority'] },
  tasksStarted: { name: 'tasks_started_total', type: 'counter', help: 'Tasks a replica started decoding.', labels: [...TASK_LABELS, 'priority'] },
  tasksCanceled: { name: 'tasks_canceled_total', type: 'counter', help: 'Tasks cancelled, by the client or evicted by a full-queue policy.', labels: [...TASK_LABELS, 'reason'] },
  tasksRejected: { name: 'tasks_rejected_total', type: 'counter', help: 'Submissions refused at admission, by error code.', labels: ['engine', 'reason'] },
  queueDepth: { name: 'queue_depth', type: 'gauge', help: 'Tasks waiting per pool and priority class.', labels: [...POOL_LABELS, 'priority'] },
  latencyFirstToken: { name: 'latency_first_token_ms', type: 'histogram', help: 'Admission to first token, ms.', labels: [...POOL_LABELS, 'priority'] },
  startPredictionError: { name: 'start_prediction_error_ms', type: 'histogram', help: 'How far the admitted start time (predicted_start_ms) missed the real queue time, absolute, ms (ORCH-3029).', labels: ['pool_id', 'priority'] },
  latencyDecode: { name: 'latency_decode_ms', type: 'histogram', help: 'Full-stream decode time, ms.', labels: [...POOL_LABELS, 'priority'] },
  tokensIn: { name: 'tokens_in_total', type: 'counter', help: 'Prompt tokens as the engine counted them (4 bytes per token only where a task ended before the engine reported).', labels: TASK_LABELS },
  tokensOut: { name: 'tokens_out_total', type: 'counter', help: 'Generated tokens streamed to clients.', labels: TASK_LABELS },
  backpressureEvents: { name: 'admission_backpressure_events_total', type: 'counter', help: '429 answers by full-queue, rate or quota policy.', labels: ['engine', 'policy'] },
  kvCacheUsage: { name: 'kv_cache_usage_ratio', type: 'gauge', help: 'KV pressure: context reserved by running tasks over the pool\'s slots × ctx (replica_id "pool").', labels: TASK_LABELS },
  gpuUtilization: { name: 'gpu_utilization', type: 'gauge', help: 'GPU utilization percent (nvidia-smi on the gateway host).', labels: ['device'], optional: true },
  vramUsed: { name: 'vram_used_bytes', type: 'gauge', help: 'VRAM in use (nvidia-smi on the gateway host).', labels: ['device'], optional: true },
  vramTotal: { name: 'vram_total_bytes', type: 'gauge', help: 'VRAM installed (nvidia-smi on the gateway host).', labels: ['device'], optional: true },
  hostMemoryUsed: { name: 'host_memory_used_bytes', type: 'gauge', help: 'Host RAM in use on the gateway host.', labels: [] },
  hostMemoryTotal: { name: 'host_memory_total_bytes', type: 'gauge', help: 'Host RAM installed on the gateway host.', labels: [] },
  errors: { name: 'errors_total', type: 'counter', help: 'Typed errors sent, by code; surface "http" (a response) or "stream" (an SSE error frame).', labels: ['code', 'surface'] },
  sloAttainment: { name: 'slo_attainment_ratio', type: 'gauge', help: 'Share of the window\'s tasks that met the objective (ORCH-3041).', labels: ['priority', 'objective'] },
  sloTarget: { name: 'slo_target_ratio', type: 'gauge', help: 'The share each objective must reach (e.g. 0.95 for a p95).', labels: ['priority', 'objective'] },
  breakerOpen: { name: 'circuit_breaker_open', type: 'gauge', help: '1 while the pool\'s SLO breaker sheds load (ORCH-3040).', labels: ['pool_id'] },
  replicaEngineLaunches: {
    name: 'replica_engine_launches',
    type: 'gauge',
    help: 'Engine launches (preload) per replica since its process started, by outcome: ready or the failure kind (OC-POOL-3030). Read from the replica status records.',
    labels: ['pool_id', 'replica_id', 'outcome'],
    // Absent until this gateway has read a replica's record (the directory refreshes every second).
    optional: true,
  },
  poolReplicasReady: { name: 'pool_replicas_ready', type: 'gauge', help: 'Replicas polling the pool\'s queue (Ready).', labels: ['pool_id'] },
  tenantActiveJobs: { name: 'tenant_active_jobs', type: 'gauge', help: 'Queued plus running jobs per tenant on this gateway (ORCH-3036).', labels: ['tenant'] },
  tenantReservedMemory: { name: 'tenant_reserved_memory_bytes', type: 'gauge', help: 'KV + scratch memory reserved by the tenant\'s jobs on this gateway.', labels: ['tenant'] },
  kvSessionsResident: { name: 'kv_sessions_resident', type: 'gauge', help: 'Sessions whose KV a replica keeps in its slots (ORCH-3022; at most its slots), as last reported.', labels: TASK_LABELS },
  kvResidentBytes: { name: 'kv_resident_bytes', type: 'gauge', help: 'KV bytes resident sessions hold on a replica (KV pressure), as last reported.', labels: TASK_LABELS },
  kvEvictions: { name: 'kv_evictions_total', type: 'counter', help: 'Session KV evicted from a replica\'s slot to run another session (LRU, ORCH-3022).', labels: TASK_LABELS },
  placementDecisions: { name: 'placement_decisions_total', type: 'counter', help: 'Placed dispatches (session affinity, policy pin) by whether the placed replica\'s lane ran them ("lane") or the pool queue did after the wait ("fallback").', labels: ['pool_id', 'reason', 'outcome'] },
  promptTokenChecks: { name: 'prompt_token_checks_total', type: 'counter', help: 'Admission\'s prompt + max_tokens ≤ ctx check (ORCH-3015) by outcome: "bound" (the byte bound fits, not counted), "counted" (a replica counted it; fits), "refused" (400), "unchecked" (no replica counted it in time; admitted).', labels: ['pool_id', 'outcome'] },
  sessionsActive: { name: 'sessions_active', type: 'gauge', help: 'Sessions this gateway remembers (ORCH-3021; bounded by sessions.max_entries).', labels: [] },
  supervisedProcessUp: {
    name: 'supervised_process_up',
    type: 'gauge',
    help: '1 while a process npm start supervises is running and serving, else 0 (issue 15).',
    labels: ['process'],
    // Only where npm start supervises this gateway.
    optional: true,
  },
  supervisedProcessRestarts: {
    name: 'supervised_process_restarts',
    type: 'gauge',
    help: 'Times npm start restarted the process since the stack started (a gauge: the supervisor counts, this gateway reports).',
    labels: ['process'],
    optional: true,
  },
  httpRequestsInFlight: { name: 'http_requests_in_flight', type: 'gauge', help: 'Requests this gateway process is serving now, open SSE streams included (bounded by gateway.max_concurrent_requests; /internal not counted).', labels: [] },
  httpRequestsRefused: { name: 'http_requests_refused_total', type: 'counter', help: 'Requests refused with 503 POOL_UNAVAILABLE because gateway.max_concurrent_requests were in flight.', labels: [] },
  httpConnectionsDropped: { name: 'http_connections_dropped_total', type: 'counter', help: 'Sockets closed unanswered on arrival because gateway.max_connections were open.', labels: [] },
  sseSlowClientCloses: { name: 'sse_slow_client_closes_total', type: 'counter', help: 'SSE connections closed because the client left more than streams.max_buffered_bytes unread (the task goes on; Last-Event-ID resumes).', labels: [] },
  sseBufferedBytesMax: { name: 'sse_buffered_bytes_max', type: 'gauge', help: 'The most bytes one SSE connection of this gateway had waiting for its client since start (a high-water mark; at most streams.max_buffered_bytes plus one burst of frames).', labels: [] },
  labelOverflow: { name: 'metric_label_overflow_total', type: 'counter', help: 'Label values folded into "other" past their cardinality budget (OC-METRICS-7102).', labels: ['metric', 'label'] },
} as const satisfies Record<string, MetricDefinition>;

export type MetricKey = keyof typeof METRICS;
type LabelsOf<Key extends MetricKey> = { readonly [Label in (typeof METRICS)[Key]['labels'][number]]: string };

/** Buckets in ms; 900 and 2500 are the interactive SLO bounds (spec §4.6), so those ratios are exact. */
export const LATENCY_BUCKETS_MS = [5, 10, 25, 50, 100, 200, 500, 900, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000];

type Collector = () => void | Promise<void>;

/**
 * The gateway's registry. Label values pass the cardinality guard first: a value a label has not seen
 * before, once that label already has its budget of values, is recorded as "other" and counted.
 */
export class OrchMetrics {
  readonly registry = new Registry();
  private readonly instruments = new Map<MetricKey, Counter | Gauge | Histogram>();
  private readonly seenValues = new Map<LabelName, Set<string>>();
  private readonly collectors: Collector[] = [];

  constructor(private readonly budgets: Readonly<Record<LabelName, number>> = LABEL_BUDGETS) {
    for (const [key, definition] of Object.entries(METRICS) as [MetricKey, MetricDefinition][]) {
      const common = { name: definition.name, help: definition.help, labelNames: [...definition.labels], registers: [this.registry] };
      const instrument =
        definition.type === 'counter' ? new Counter(common) : definition.type === 'gauge' ? new Gauge(common) : new Histogram({ ...common, buckets: LATENCY_BUCKETS_MS });
      this.instruments.set(key, instrument);
    }
    // Every overflow series exists from the start at 0, so rate() and alerts see the first fold.
    const overflow = this.instrument('labelOverflow') as Counter;
    for (const definition of Object.values(METRICS) as MetricDefinition[]) {
      for (const label of definition.labels) overflow.inc({ metric: definition.name, label }, 0);
    }
  }

  inc<Key extends MetricKey>(key: Key, labels: LabelsOf<Key>, value = 1): void {
    (this.instrument(key) as Counter).inc(this.guard(key, labels), value);
  }

  set<Key extends MetricKey>(key: Key, labels: LabelsOf<Key>, value: number): void {
    (this.instrument(key) as Gauge).set(this.guard(key, labels), value);
  }

  observe<Key extends MetricKey>(key: Key, labels: LabelsOf<Key>, value: number): void {
    (this.instrument(key) as Histogram).observe(this.guard(key, labels), value);
  }

  /** Forgets a gauge's series, so values that stopped existing (a closed breaker's pool) do not linger. */
  resetGauge(key: MetricKey): void {
    (this.instrument(key) as Gauge).reset();
  }

  /** Runs before each scrape: gauges read from their sources (queue depth, host memory, …). */
  addCollector(collector: Collector): void {
    this.collectors.push(collector);
  }

  async exposition(): Promise<string> {
    for (const collector of this.collectors) await collector();
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private instrument(key: MetricKey): Counter | Gauge | Histogram {
    const instrument = this.instruments.get(key);
    if (!instrument) throw new Error(`metric ${key} is not declared`);
    return instrument;
  }

  private guard(key: MetricKey, labels: Readonly<Record<string, string>>): Record<string, string> {
    const guarded: Record<string, string> = {};
    for (const [label, value] of Object.entries(labels)) {
      const name = label as LabelName;
      let seen = this.seenValues.get(name);
      if (!seen) this.seenValues.set(name, (seen = new Set()));
      if (seen.has(value)) {
        guarded[label] = value;
      } else if (seen.size < this.budgets[name]) {
        seen.add(value);
        guarded[label] = value;
      } else {
        guarded[label] = OVERFLOW_LABEL_VALUE;
        (this.instrument('labelOverflow') as Counter).inc({ metric: METRICS[key].name, label });
      }
    }
    return guarded;
  }
}
