import type { OrchClient, PoolHealth, PoolOperationAccepted } from '../../clients/typescript/src';
import type { CliOutput } from './cli-output';

interface ReplicaLine {
  readonly replica_id: string;
  readonly state: string;
  readonly model_ref?: string | null;
}

const replicasOf = (health: PoolHealth): ReplicaLine[] => (health.metrics['replicas'] as ReplicaLine[] | undefined) ?? [];
type PoolStateView = { mode?: string; model_ref?: string; operation?: { id: string; kind: string; reload?: { phase: string } } | null };
const poolStateOf = (health: PoolHealth): PoolStateView => (health.metrics['pool_state'] as PoolStateView | undefined) ?? {};

/** `pools`: one line per pool — model, mode, replicas ready of known, backlog, the last error. */
export async function poolsCommand(api: OrchClient, poolIds: readonly string[], output: CliOutput): Promise<void> {
  const rows = await Promise.all(
    poolIds.map(async (poolId) => {
      const health = await api.poolHealth(poolId);
      const state = poolStateOf(health);
      const replicas = replicasOf(health);
      return {
        pool: poolId,
        model: state.model_ref,
        mode: state.operation ? `${state.mode ?? '?'} (${state.operation.kind} running)` : state.mode,
        ready: `${replicas.filter((replica) => replica.state === 'ready').length}/${replicas.length}`,
        replicas: replicas.map((replica) => `${replica.replica_id}:${replica.state}`).join(' '),
        backlog: health.metrics['backlog'],
        last_error: health.last_error,
      };
    }),
  );
  output.table(rows);
}

/**
 * `drain` / `resume` / `reload`: starts the operation, then shows the replicas' states until it ends
 * (exit status 1 when it rolled back or failed).
 */
export async function poolOperationCommand(api: OrchClient, started: Promise<PoolOperationAccepted>, output: CliOutput): Promise<void> {
  const accepted = await started;
  if (!output.json) process.stderr.write(`${accepted.kind} of pool ${accepted.pool_id} started (operation ${accepted.operation_id}; find it in the Web UI)\n`);
  const startedAt = Date.now();
  const ended = await api.waitForOperation(accepted, {
    onProgress: (health) => {
      const replicas = replicasOf(health)
        .map((replica) => `${replica.replica_id} ${replica.state}${replica.model_ref ? ` (${replica.model_ref})` : ''}`)
        .join(', ');
      const seconds = Math.round((Date.now() - startedAt) / 1000);
      // A reload's phase (ORCH-3033): canary, canary_observing, rolling_out, switched, rolling_back.
      const phase = poolStateOf(health).operation?.reload?.phase;
      if (!output.json) output.progress(`${accepted.kind} ${accepted.pool_id}${phase ? ` [${phase}]` : ''}: ${replicas || 'no replica reporting'}; backlog ${typeof health.metrics['backlog'] === 'number' ? health.metrics['backlog'] : 0} (${seconds} s)`);
    },
  });
  output.endProgress();
  output.result(`${ended.kind} of pool ${accepted.pool_id}: ${ended.outcome}${ended.cause ? ` (${ended.cause})` : ''}`, ended);
  if (ended.outcome !== 'completed') process.exitCode = 1;
}
