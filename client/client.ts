// HourglassClient: every REST call of the API as a method. The calls live in one file per resource
// (sandboxes.ts, execs.ts, files.ts …) as functions of the HTTP layer; this binds them to one.
import * as events from './events';
import * as execs from './execs';
import * as files from './files';
import { Http, type ClientOptions } from './http';
import * as jobs from './jobs';
import * as operator from './operator';
import * as sandboxes from './sandboxes';
import * as sessions from './sessions';
import * as webhooks from './webhooks';

const groups = { sandboxes, execs, files, sessions, jobs, events, webhooks, operator };

type Bound<M> = {
  [K in keyof M]: M[K] extends (http: Http, ...args: infer A) => infer R ? (...args: A) => R : never;
};
type Calls = Bound<typeof sandboxes> &
  Bound<typeof execs> &
  Bound<typeof files> &
  Bound<typeof sessions> &
  Bound<typeof jobs> &
  Bound<typeof events> &
  Bound<typeof webhooks> &
  Bound<typeof operator>;

class Client {
  readonly baseUrl: string;

  constructor(opts: ClientOptions) {
    const http = new Http(opts);
    this.baseUrl = http.baseUrl;
    for (const group of Object.values(groups)) {
      for (const [name, fn] of Object.entries(group)) {
        Object.defineProperty(this, name, { value: (...args: unknown[]) => fn(http, ...(args as [never, never])) });
      }
    }
  }
}

export type HourglassClient = Client & Calls;
/** `new HourglassClient({ baseUrl, token? })`; failed calls throw HourglassApiError. */
export const HourglassClient = Client as new (opts: ClientOptions) => HourglassClient;
