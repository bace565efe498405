import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** The internal channel's token: ORCH_INTERNAL_TOKEN on multi-host deployments, else minted per run. */
export function internalTokenFromEnv(options: { mintIfMissing: boolean }): string {
  const fromEnv = process.env['ORCH_INTERNAL_TOKEN'];
  if (fromEnv && fromEnv.length >= 16) return fromEnv;
  if (fromEnv) throw new Error('ORCH_INTERNAL_TOKEN must be at least 16 characters');
  if (!options.mintIfMissing) throw new Error('ORCH_INTERNAL_TOKEN is required for this process');
  return randomBytes(24).toString('base64url');
}

/** The expected token's digest, computed once per token: every internal request (each token chunk) checks it. */
const expectedDigests = new Map<string, Buffer>();

/** Compares a presented bearer token with the expected one in constant time (digests, so lengths never leak). */
export function bearerMatches(header: string | undefined, expectedToken: string): boolean {
  if (typeof header !== 'string' || !header.startsWith('Bearer ')) return false;
  const presented = createHash('sha256').update(header.slice('Bearer '.length)).digest();
  let expected = expectedDigests.get(expectedToken);
  if (!expected) {
    expected = createHash('sha256').update(expectedToken).digest();
    expectedDigests.set(expectedToken, expected);
  }
  return timingSafeEqual(presented, expected);
}
