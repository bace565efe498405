import { ErrorCode, OrchError } from '../../core/errors';
import { taskWorkflowId } from '../../core/ids';
import { SearchAttr } from '../../core/search-attributes';
import type { GatewayContext } from '../gateway-context';

/**
 * Tenancy (ORCH-3035): a tenant sees, streams and cancels only its own tasks. Another tenant's task is
 * answered exactly like a task that does not exist (404), so task ids leak nothing. The owner is the
 * live stream's tenant on the gateway that admitted it, else the workflow's ClientId search attribute.
 * Enforced while auth is on; with `auth.mode: disabled` any client may read any task, as before keys.
 */
export async function assertOwnsTask(context: Pick<GatewayContext, 'hub' | 'client' | 'auth'>, taskId: string, tenant: string): Promise<void> {
  // Without keys the client id is an unchecked header: owning by it would protect nothing and break readers.
  if (!context.auth.enabled) return;
  const live = context.hub.get(taskId);
  if (live) {
    if (live.tenant !== undefined && live.tenant !== tenant) throw notFound(taskId);
    return;
  }
  let owner: string | undefined;
  try {
    const description = await context.client.workflow.getHandle(taskWorkflowId(taskId)).describe();
    owner = description.typedSearchAttributes.get(SearchAttr.clientId);
  } catch (error) {
    if ((error as { name?: unknown }).name === 'WorkflowNotFoundError') throw notFound(taskId);
    throw error;
  }
  if (owner !== tenant) throw notFound(taskId);
}

function notFound(taskId: string): OrchError {
  return new OrchError(ErrorCode.INVALID_PARAMS, `no task with id ${taskId}`, { notFound: true });
}
