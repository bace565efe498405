#!/usr/bin/env node
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { managedKeysPath } from '../../api/auth/api-keys';
import { OrchApiError, OrchClient } from '../../clients/typescript/src';
import { loadConfigFile } from '../../core/config-file';
import { ENGINES } from '../../core/engines';
import { configPathFromArgs } from '../../platform/config-path';
import { httpUrl } from '../../platform/http-url';
import { temporalAddress } from '../../platform/temporal-connections';
import { cliOutput } from './cli-output';
import { createKey, listKeys, revokeKey } from './key-commands';
import { poolOperationCommand, poolsCommand } from './pool-commands';
import { cancelCommand, submitCommand, tasksCommand } from './task-commands';

const USAGE = `llama-orch — the command line for a running stack (npm run cli -- <command>, or npx llama-orch <command>)

  submit "prompt" [--model REF] [--priority interactive|batch] [--max-tokens N] [--ctx N] [--seed N] [--engine llamacpp]
                                   stream the tokens to the terminal (Ctrl-C cancels the task)
  cancel TASK_ID                   cancel a task
  tasks [--state STATE] [--limit N] the newest tasks from Temporal visibility, with their state
  pools                            a health table of every pool
  drain POOL [--deadline-ms N]     drain a pool, showing progress until it ends
  resume POOL                      resume a drained pool
  reload POOL MODEL_REF [--all-at-once] [--canary-observe-ms N]
                                   reload a pool on another model: one replica first (canary), then the rest;
                                   rolls back on failure
  keys list | keys create --tenant T [--scopes data,control] [--id ID] | keys revoke ID
                                   API keys in <data_dir>/api-keys.json (or --keys-file); applied by a config reload

Options: --url (ORCH_URL; default the config's gateway), --api-key (ORCH_API_KEY), --config (ORCH_CONFIG;
default config/llama-orch.yaml), --json (machine-readable output), TEMPORAL_ADDRESS for tasks.`;

const OPTIONS = {
  url: { type: 'string' },
  'api-key': { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean', default: false },
  model: { type: 'string' },
  priority: { type: 'string', default: 'interactive' },
  'max-tokens': { type: 'string', default: '128' },
  ctx: { type: 'string', default: '2048' },
  seed: { type: 'string' },
  engine: { type: 'string', default: 'llamacpp' },
  state: { type: 'string' },
  limit: { type: 'string', default: '20' },
  'deadline-ms': { type: 'string', default: '60000' },
  'all-at-once': { type: 'boolean', default: false },
  'canary-observe-ms': { type: 'string' },
  tenant: { type: 'string' },
  scopes: { type: 'string', default: 'data' },
  id: { type: 'string' },
  'keys-file': { type: 'string' },
  help: { type: 'boolean', default: false },
} as const;

async function main(argv: readonly string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true });
  const [command, ...rest] = positionals;
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const output = cliOutput(values.json);
  const configPath = resolve(configPathFromArgs(argv));
  const config = loadConfigFile(configPath).config;
  const baseUrl = (values.url ?? process.env['ORCH_URL'] ?? httpUrl(config.gateway.host, config.gateway.port)).replace(/\/+$/, '');
  const apiKey = values['api-key'] ?? process.env['ORCH_API_KEY'];
  const api = new OrchClient({ baseUrl, apiKey });
  const integer = (name: keyof typeof OPTIONS, value: string | undefined): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed)) throw new Error(`--${name} must be an integer`);
    return parsed;
  };
  const need = (value: string | undefined, what: string): string => {
    if (value === undefined) throw new Error(`${command} needs ${what}\n\n${USAGE}`);
    return value;
  };
  const keysFile = values['keys-file'] ?? managedKeysPath(config);
  switch (command) {
    case 'submit': {
      const priority = values.priority === 'batch' ? 'batch' : values.priority === 'interactive' ? 'interactive' : undefined;
      if (!priority) throw new Error('--priority must be interactive or batch');
      const engine = ENGINES.find((candidate) => candidate === values.engine);
      if (!engine) throw new Error(`--engine must be one of ${ENGINES.join(', ')}`);
      const options = {
        prompt: need(rest.join(' ') || undefined, 'a prompt'),
        model: values.model,
        priority,
        maxTokens: integer('max-tokens', values['max-tokens']),
        ctx: integer('ctx', values.ctx),
        seed: values.seed === undefined ? undefined : integer('seed', values.seed),
        engine,
      } as const;
      return submitCommand(api, baseUrl, apiKey, options, output);
    }
    case 'cancel':
      return cancelCommand(api, need(rest[0], 'a task id'), output);
    case 'tasks': {
      const address = temporalAddress(config) ?? `127.0.0.1:${config.temporal.embedded.port}`;
      return tasksCommand(address, config.temporal.namespace, { state: values.state, limit: integer('limit', values.limit) }, output);
    }
    case 'pools':
      return poolsCommand(api, config.pools.map((pool) => pool.id), output);
    case 'drain':
      return poolOperationCommand(api, api.drain(need(rest[0], 'a pool id'), integer('deadline-ms', values['deadline-ms'])), output);
    case 'resume':
      return poolOperationCommand(api, api.resume(need(rest[0], 'a pool id')), output);
    case 'reload':
      return poolOperationCommand(
        api,
        api.reload(need(rest[0], 'a pool id'), need(rest[1], 'a model ref'), {
          ...(values['all-at-once'] ? { strategy: 'all_at_once' as const } : {}),
          ...(values['canary-observe-ms'] === undefined ? {} : { canary_observe_ms: Number(values['canary-observe-ms']) }),
        }),
        output,
      );
    case 'keys': {
      const action = rest[0];
      if (action === 'list') return listKeys(keysFile, output);
      if (action === 'create') createKey(keysFile, { tenant: need(values.tenant, '--tenant'), scopes: values.scopes.split(','), id: values.id }, output);
      else if (action === 'revoke') revokeKey(keysFile, need(rest[1], 'a key id'), output);
      else throw new Error(`keys needs list, create or revoke\n\n${USAGE}`);
      return applyKeys(api, output);
    }
    default:
      throw new Error(`unknown command ${command}\n\n${USAGE}`);
  }
}

/** A running stack picks the keys file up on a config reload; without one (or a control key) say how. */
async function applyKeys(api: OrchClient, output: ReturnType<typeof cliOutput>): Promise<void> {
  try {
    await api.reloadConfig();
    if (!output.json) process.stderr.write('applied: the gateway reloaded its keys\n');
  } catch (error) {
    const why = error instanceof OrchApiError ? error.message : 'the gateway is not running';
    if (!output.json) process.stderr.write(`not applied yet (${why}): POST /v1/config/reload with a control key, or restart\n`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const refused = (error as { cause?: { code?: unknown } } | undefined)?.cause?.code === 'ECONNREFUSED';
  const message = refused ? 'cannot reach the gateway (is npm start running? --url or ORCH_URL names another)' : error instanceof Error ? error.message : String(error);
  process.stderr.write(`llama-orch: ${message}\n`);
  process.exit(error instanceof OrchApiError && error.status === 404 ? 4 : 1);
});
