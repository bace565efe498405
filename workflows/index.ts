export { taskWorkflow } from './task-workflow';
