export { taskWorkflow } from './task-workflow';
export { replicaStatusWorkflow } from './replica-status-workflow';
export { poolStateWorkflow } from './pool-state-workflow';
export { drainPoolWorkflow, reloadPoolWorkflow, resumePoolWorkflow } from './pool-operations';
