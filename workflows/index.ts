export { taskWorkflow } from './task-workflow';
export { replicaStatusWorkflow } from './replica-status-workflow';
export { sessionKvEvictionWorkflow } from './session-kv-eviction-workflow';
export { poolStateWorkflow } from './pool-state-workflow';
export { drainPoolWorkflow, resumePoolWorkflow } from './pool-operations';
export { reloadPoolWorkflow } from './pool-reload';
