import { randomUUID } from 'node:crypto';
import { Connection, Client } from '@temporalio/client';
import type { OrchClient } from '../../clients/typescript/src';
import { TASK_WORKFLOW_TYPE } from '../../core/task-workflow-contract';
import type { Engine } from '../../core/engines';
import type { CliOutput } from './cli-output';

export interface SubmitOptions {
  readonly prompt: string;
  readonly model: string | undefined;
  readonly priority: 'interactive' | 'batch';
  readonly maxTokens: number;
  readonly ctx: number;
  readonly seed: number | undefined;
  readonly engine: Engine;
}

/** `submit`: an OrchQueue task, its tokens streamed to stdout as they come (`--json`: one event per line). */
export async function submitCommand(api: OrchClient, baseUrl: string, apiKey: string | undefined, options: SubmitOptions, output: CliOutput): Promise<void> {
  const model = options.model ?? (await firstModel(baseUrl, apiKey));
  const taskId = randomUUID();
  const admission = await api.submit({
    task_id: taskId,
    session_id: randomUUID(),
    workload: 'completion',
    model_ref: model,
    engine: options.engine,
    ctx: options.ctx,
    priority: options.priority,
    prompt: options.prompt,
    max_tokens: options.maxTokens,
    deadline_ms: 600_000,
    ...(options.seed === undefined ? {} : { seed: options.seed }),
  });
  if (!output.json) process.stderr.write(`task ${taskId} admitted (queue position ${admission.queue_position}); Ctrl-C cancels it\n`);
  const controller = new AbortController();
  const onInterrupt = (): void => {
    controller.abort();
    void api.cancel(taskId, 'cli interrupt').finally(() => process.exit(130));
  };
  process.once('SIGINT', onInterrupt);
  try {
    for await (const event of api.stream(taskId, { signal: controller.signal })) {
      if (output.json) process.stdout.write(`${JSON.stringify(event)}\n`);
      else if (event.event === 'token') process.stdout.write(event.data.t);
      else if (event.event === 'end') process.stderr.write(`\n[${event.data.canceled ? 'cancelled' : 'done'}: ${event.data.tokens_out} tokens in ${event.data.decode_ms} ms]\n`);
      else if (event.event === 'error') {
        process.stderr.write(`\n[failed: ${event.data.code}: ${event.data.message}]\n`);
        process.exitCode = 1;
      }
    }
  } finally {
    process.off('SIGINT', onInterrupt);
  }
}

/** The first model GET /v1/models lists (the OpenAI-compatible listing needs only a data key). */
async function firstModel(baseUrl: string, apiKey: string | undefined): Promise<string> {
  const response = await fetch(`${baseUrl}/v1/models`, { headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {} });
  const body = (await response.json()) as { data?: { id: string }[]; error?: { message: string } };
  const model = body.data?.[0]?.id;
  if (!model) throw new Error(`no model to submit to (${body.error?.message ?? 'GET /v1/models listed none'}); pass --model`);
  return model;
}

export async function cancelCommand(api: OrchClient, taskId: string, output: CliOutput): Promise<void> {
  await api.cancel(taskId, 'cli');
  output.result(`task ${taskId} cancelled`, { task_id: taskId, cancelled: true });
}

/** `tasks`: the newest task workflows from Temporal visibility, with their state (the Web UI's list). */
export async function tasksCommand(temporalAddress: string, namespace: string, options: { readonly state: string | undefined; readonly limit: number }, output: CliOutput): Promise<void> {
  const connection = await Connection.connect({ address: temporalAddress, connectTimeout: 5_000 });
  try {
    const client = new Client({ connection, namespace });
    const query = [`WorkflowType = '${TASK_WORKFLOW_TYPE}'`, ...(options.state ? [`TaskState = '${options.state.replace(/'/g, '')}'`] : [])].join(' AND ');
    const rows: Record<string, unknown>[] = [];
    for await (const execution of client.workflow.list({ query, pageSize: options.limit })) {
      const attributes = execution.searchAttributes;
      const first = (name: string): unknown => (attributes[name] as unknown[] | undefined)?.[0];
      rows.push({
        task_id: first('TaskId') ?? execution.workflowId,
        state: first('TaskState') ?? execution.status.name.toLowerCase(),
        pool: first('Pool'),
        priority: first('Priority'),
        client: first('ClientId'),
        replica: first('Replica'),
        started: execution.startTime.toISOString(),
      });
      if (rows.length >= options.limit) break;
    }
    output.table(rows);
  } finally {
    await connection.close();
  }
}
