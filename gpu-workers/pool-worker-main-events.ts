/** What a pool worker tells `npm start` over IPC once its replica first serves (cli/start.ts). */
export const REPLICA_READY_EVENT = 'replica-ready';
