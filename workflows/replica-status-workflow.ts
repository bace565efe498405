import { allHandlersFinished, condition, continueAsNew, defineQuery, defineSignal, setHandler } from '@temporalio/workflow';
import { REPLICA_STATUS_QUERY, REPLICA_STATUS_SIGNAL } from '../core/replica-status';
import type { ReplicaStatus } from '../core/replica-status';

export const replicaStatusSignal = defineSignal<[ReplicaStatus]>(REPLICA_STATUS_SIGNAL);
export const replicaStatusQuery = defineQuery<ReplicaStatus | null>(REPLICA_STATUS_QUERY);

/** Keeps the history short: a replica signals on state changes only, so this is many restarts' worth. */
const SIGNALS_PER_RUN = 500;

/**
 * One pool replica's status record (workflow id `replica-<pool>-<replica>`): the pool manager sends
 * every state change with signalWithStart, gateways on any host query the latest. It runs until
 * terminated, continuing as new with the latest status every SIGNALS_PER_RUN signals.
 */
export async function replicaStatusWorkflow(initial: ReplicaStatus | null): Promise<void> {
  let latest = initial;
  let received = 0;
  setHandler(replicaStatusSignal, (status) => {
    latest = status;
    received += 1;
  });
  setHandler(replicaStatusQuery, () => latest);
  await condition(() => received >= SIGNALS_PER_RUN && allHandlersFinished());
  await continueAsNew<typeof replicaStatusWorkflow>(latest);
}
