import { createHash } from 'node:crypto';

/**
 * The ABI a WIT file defines, without what cannot change it: comments, layout and the package's own
 * version. Two WIT texts with the same normalized form lower and lift the same values.
 */
export function normalizePolicyWit(wit: string): string {
  return wit
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/\/\/.*$/gm, ' ')
    .replace(/(package\s+[a-z0-9-]+:[a-z0-9-]+)@[0-9A-Za-z.+-]+/, '$1')
    .replace(/\s+/g, ' ')
    .replace(/\s*([{}();:,<>.=])\s*/g, '$1')
    .replace(/,([})>])/g, '$1')
    .trim();
}

/**
 * sha256 of the normalized ABI definition. .specs/policy-abi.md records it for every released ABI
 * version (OC-POLICY-SDK-4102): a WIT change that leaves the version as it was changes this, and a
 * unit test says what to bump and where to write the migration note.
 */
export function policyAbiFingerprint(wit: string): string {
  return createHash('sha256').update(normalizePolicyWit(wit)).digest('hex');
}
