import type { WorkerChunk } from '../../core/stream-parts';
import type { SessionRegistry } from './session-registry';

/**
 * Feeds a task's accepted chunk to the session registry: the `dispatched` frame names the replica, the
 * `kv` frame (sent by the replica just before `end`) its KV state for the session, and `end` or `error`
 * closes the turn. The gateway already sees all of these, so sessions cost no Temporal call.
 */
export function observeSessionChunk(sessions: SessionRegistry, taskId: string, chunk: WorkerChunk): void {
  for (const part of chunk.parts) {
    if (part.type === 'metrics') {
      const { values } = part;
      const replicaId = values['replica_id'];
      if (typeof replicaId !== 'string') continue;
      if (values['phase'] === 'dispatched') sessions.dispatched(taskId, replicaId);
      if (values['phase'] === 'kv') {
        sessions.kvReported(taskId, {
          replicaId,
          kvWarmth: values['kv_warmth'] === true,
          kvBytes: typeof values['kv_bytes'] === 'number' ? values['kv_bytes'] : 0,
        });
      }
    } else if (part.type === 'end') {
      sessions.taskEnded(taskId, true);
    } else if (part.type === 'error') {
      sessions.taskEnded(taskId, false);
    }
  }
}
