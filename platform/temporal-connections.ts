import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { Logger } from 'pino';
import type { OrchConfig } from '../core/config';
import { installTemporalRuntime } from './temporal-runtime';

/** TEMPORAL_ADDRESS wins over the config file, so one config serves every host of a deployment. */
export function temporalAddress(config: OrchConfig): string | undefined {
  const fromEnv = process.env['TEMPORAL_ADDRESS'];
  return fromEnv && fromEnv.length > 0 ? fromEnv : (config.temporal.address ?? undefined);
}

export function requireTemporalAddress(config: OrchConfig): string {
  const address = temporalAddress(config);
  if (!address) throw new Error('no Temporal address: set TEMPORAL_ADDRESS or temporal.address in the config (npm start runs an embedded one)');
  return address;
}

export async function connectClient(address: string, namespace: string): Promise<{ client: Client; connection: Connection }> {
  const connection = await Connection.connect({ address });
  return { client: new Client({ connection, namespace }), connection };
}

/** Worker-side connection; installs the SDK runtime first so its logs go through our logger. */
export function connectWorker(address: string, logger: Logger): Promise<NativeConnection> {
  installTemporalRuntime(logger);
  return NativeConnection.connect({ address });
}
