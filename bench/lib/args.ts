// Command-line parameters: positional values in a fixed order, or --name=value / --name value
// (kebab-case flags map to camelCase names). Each default's type says how its value is parsed.
export type Params = Record<string, number | string | boolean>;

export function parseParams<T extends Params>(
  usage: string,
  defaults: T,
  positional: (keyof T & string)[] = [],
  argv = process.argv.slice(2),
): T {
  const out: Params = { ...defaults };
  const set = (name: string, raw: string | undefined) => {
    if (!(name in defaults)) fail(usage, `unknown option --${kebab(name)}`);
    const d = defaults[name];
    if (typeof d === 'boolean') {
      out[name] = raw === undefined || raw === 'true' || raw === '1';
      if (raw !== undefined && !['true', 'false', '1', '0'].includes(raw)) {
        fail(usage, `--${kebab(name)} takes true or false`);
      }
    } else if (typeof d === 'number') {
      const n = Number(raw);
      if (raw === undefined || raw === '' || !Number.isFinite(n)) {
        fail(usage, `--${kebab(name)} takes a number (got ${raw})`);
      }
      out[name] = n;
    } else {
      if (raw === undefined) fail(usage, `--${kebab(name)} takes a value`);
      out[name] = raw;
    }
  };
  let next = 0;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') {
      console.log(usage);
      process.exit(0);
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = camel(arg.slice(2, eq < 0 ? undefined : eq));
      if (eq >= 0) {
        set(name, arg.slice(eq + 1));
      } else if (typeof defaults[name] === 'boolean' && !['true', 'false', '1', '0'].includes(argv[i + 1] ?? '')) {
        set(name, undefined);
      } else {
        set(name, argv[++i]);
      }
    } else {
      const name = positional[next++];
      if (!name) fail(usage, `unexpected argument ${arg}`);
      set(name, arg);
    }
  }
  return out as T;
}

/** "1,8,32" → [1, 8, 32] */
export function numberList(text: string): number[] {
  const xs = text.split(',').filter(Boolean).map(Number);
  if (!xs.length || xs.some((x) => !Number.isFinite(x) || x <= 0)) {
    throw new Error(`not a list of positive numbers: ${text}`);
  }
  return xs;
}

function fail(usage: string, message: string): never {
  console.error(`${message}\n${usage}`);
  process.exit(2);
}

const camel = (s: string) => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
