// templates/serve: a cache host for a CI farm (templates serve), and the client of its on-demand jobs API.
export { startServer, type ServeOptions, type RunningServer } from '../server/serve.js';
export { createJobClient, jobFailure } from '../jobs/client.js';
export type { JobClient, JobClientOptions, JobJson, JobPage, NewJobRequest, WaitOptions } from '../jobs/client.js';
