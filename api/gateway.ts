import type { Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { OrchConfig } from '../core/config';
import { buildApp } from './app';
import { configuredSlots } from './pool-selection';
import { QueueEstimator } from './queue-estimator';
import { StreamHub } from './stream-hub';

export interface GatewayOptions {
  readonly config: OrchConfig;
  readonly client: Client;
  readonly logger: Logger;
  readonly internalToken: string;
  /** True when `client` shares the NativeConnection of a workflow worker in this process. */
  readonly eagerWorkflowStart?: boolean | undefined;
  /** Overrides config.gateway.host/port (tests listen on port 0). */
  readonly listen?: { readonly host: string; readonly port: number } | undefined;
}

export interface RunningGateway {
  readonly app: FastifyInstance;
  readonly hub: StreamHub;
  /** Base URL of the public API. */
  readonly url: string;
  close(): Promise<void>;
}

/** Starts the gateway and listens; the internal URL defaults to the address it actually bound. */
export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  const { config } = options;
  const hub = new StreamHub({ replayCapacity: config.streams.replay_buffer_frames, lingerMs: config.streams.linger_ms });
  const estimator = new QueueEstimator(new Map(config.pools.map((pool) => [pool.id, configuredSlots(pool)])));
  const listen = options.listen ?? { host: config.gateway.host, port: config.gateway.port };
  let internalUrl = config.gateway.internal_url ?? '';
  const app = buildApp({
    config,
    client: options.client,
    logger: options.logger,
    hub,
    estimator,
    internalToken: options.internalToken,
    eagerWorkflowStart: options.eagerWorkflowStart ?? false,
    get internalUrl() {
      return internalUrl;
    },
  });
  await app.listen({ host: listen.host, port: listen.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : listen.port;
  const url = `http://${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${port}`;
  if (!internalUrl) internalUrl = url;
  return {
    app,
    hub,
    url,
    close: async () => {
      hub.close();
      await app.close();
    },
  };
}
