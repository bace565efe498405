/** What a workflow-worker process tells `npm start` over IPC once it polls its queue (cli/start.ts). */
export const WORKFLOW_WORKER_POLLING_EVENT = 'workflow-worker-polling';
