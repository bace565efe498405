import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { ErrorCode } from '../../core/errors';
import { ReplicaFailure } from './replica-failure';

export interface VerifiedModel {
  readonly path: string;
  readonly sizeBytes: number;
  /** `sha256:<hex>`, as reported in health and logs (ORCH-3032). */
  readonly digest: string;
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Hashes the model file and compares it with the expected digest before every load (ORCH-3037,
 * ORCH-3042): a file changed on disk since it was provisioned is never loaded.
 */
export async function verifyModel(path: string, expectedSha256: string | undefined): Promise<VerifiedModel> {
  if (expectedSha256 === undefined) {
    throw new ReplicaFailure(ErrorCode.UNTRUSTED_ARTIFACT, 'untrusted_artifact', `${path} has no declared or recorded sha256; refusing to load it`);
  }
  let sizeBytes: number;
  try {
    sizeBytes = (await stat(path)).size;
  } catch (error) {
    throw new ReplicaFailure(ErrorCode.UNTRUSTED_ARTIFACT, 'untrusted_artifact', `model file unreadable: ${error instanceof Error ? error.message : String(error)}`);
  }
  const actual = await sha256Of(path);
  if (actual !== expectedSha256) {
    throw new ReplicaFailure(
      ErrorCode.UNTRUSTED_ARTIFACT,
      'untrusted_artifact',
      `model checksum mismatch for ${path}: expected sha256 ${expectedSha256}, file has ${actual}`,
    );
  }
  return { path, sizeBytes, digest: `sha256:${actual}` };
}
