/**
 * The policy SDK (OC-POLICY-SDK-4101/4102/4110): the ABI version, the snapshot and decision types
 * and schemas, and the mapping from a TaskRequest. Semver-stable within a MAJOR of the ABI; a
 * breaking change bumps POLICY_ABI.major and adds a migration note to .specs/policy-abi.md. Nothing
 * here performs I/O: these are types, schemas and pure functions.
 */
export { POLICY_ABI, POLICY_ABI_VERSION, parseSemVer, policyExportName } from './abi-version';
export type { SemVer } from './abi-version';
export type { AdmitDecision, NativePolicy, PlaceDecision, RejectCode } from './decision';
export { REJECT_CODES } from './decision';
export { policyRequestFromTask } from './from-task-request';
export * from './snapshot';
