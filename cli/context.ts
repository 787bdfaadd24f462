// What every API command gets from the global options: the typed client and a printer that
// honours --json (the raw answer) or prints the human form.
import type { Command } from 'commander';
import { HourglassClient } from '../client/index';

export interface GlobalOpts {
  url: string;
  token?: string;
  json?: boolean;
}

export interface CommandContext {
  client: HourglassClient;
  json: boolean;
  /** --json: the value as JSON; else the human text. */
  print: (value: unknown, human: () => string) => void;
}

export function contextOf(cmd: Command): CommandContext {
  const o = cmd.optsWithGlobals<GlobalOpts>();
  const json = Boolean(o.json);
  return {
    client: new HourglassClient({ baseUrl: o.url, token: o.token }),
    json,
    print: (value, human) => console.log(json ? JSON.stringify(value, null, 2) : human()),
  };
}
