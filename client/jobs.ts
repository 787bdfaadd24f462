// Jobs: a sandbox that runs commands in order, records each result, then is destroyed (unless keepalive).
import { seg, type Http } from './http';
import type { CreateJobRequest, Job } from './types';

/** Starts a job (it runs on its own; poll getJob). The same idempotency key gives the same job. */
export function createJob(http: Http, body: CreateJobRequest, opts: { idempotencyKey?: string } = {}): Promise<Job> {
  return http.json('POST', '/v1/jobs', { body, headers: { 'idempotency-key': opts.idempotencyKey } });
}

/** A job's state and the result of each step so far (its id is its sandbox's id). */
export function getJob(http: Http, id: string): Promise<Job> {
  return http.json('GET', `/v1/jobs/${seg(id)}`);
}
