export { taskWorkflow } from './task-workflow';
export { replicaStatusWorkflow } from './replica-status-workflow';
