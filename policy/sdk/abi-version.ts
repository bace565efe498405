/**
 * The version of the policy ABI this host speaks (OC-POLICY-4002, OC-POLICY-SDK-4101). It must
 * equal the `package llama-orch:policy@X.Y.Z` line of policy/wit/policy.wit; a unit test keeps the
 * two in step. MAJOR changes break plugins; MINOR only appends (see the header of policy.wit).
 */
export const POLICY_ABI = {
  packageName: 'llama-orch:policy',
  interfaceName: 'policy',
  worldName: 'policy-plugin',
  major: 1,
  minor: 0,
  patch: 0,
} as const;

export const POLICY_ABI_VERSION = `${POLICY_ABI.major}.${POLICY_ABI.minor}.${POLICY_ABI.patch}`;

export interface SemVer {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
}

const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:[-+].*)?$/;

export function parseSemVer(text: string): SemVer | undefined {
  const match = SEMVER.exec(text);
  if (match === null) return undefined;
  return { major: Number(match[1]), minor: Number(match[2]), patch: Number(match[3]) };
}

/** The exported interface name a plugin of `version` carries, e.g. `llama-orch:policy/policy@1.0.0`. */
export function policyExportName(version: string = POLICY_ABI_VERSION): string {
  return `${POLICY_ABI.packageName}/${POLICY_ABI.interfaceName}@${version}`;
}
