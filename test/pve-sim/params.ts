// PVE's JSONSchema parameter checks, the subset the simulator's endpoints need (proxmox-api.md §0).
import { paramError, pveText } from './errors';

export type ParamType = 'integer' | 'boolean' | 'string' | 'string-list' | 'dns-name';

export interface ParamSpec {
  type: ParamType;
  optional?: boolean;
  minimum?: number;
  maximum?: number;
  enum?: readonly string[];
  maxLength?: number;
}

export type Schema = Record<string, ParamSpec>;

/** Form bodies give strings (arrays for repeated keys); JSON bodies give anything. */
export type RawParams = Record<string, unknown>;

const DNS_NAME = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*$/;

/** JSON true/false reach PVE's perl as "1"/"0"; everything else is stringified as-is. */
function scalarText(value: unknown): string {
  if (value === true) return '1';
  if (value === false) return '0';
  return String(value);
}

function checkOne(spec: ParamSpec, value: unknown): { ok: true; value: unknown } | { ok: false; error: string } {
  if (spec.type === 'string-list') {
    // A single scalar is wrapped into a one-element array (proxmox-api.md §0).
    const list = (Array.isArray(value) ? value : [value]).map(scalarText);
    return { ok: true, value: list };
  }
  if (Array.isArray(value)) {
    if (value.length !== 1) return { ok: false, error: `type check ('${spec.type}') failed - got ARRAY` };
    value = value[0];
  }
  const text = scalarText(value);
  switch (spec.type) {
    case 'boolean':
      // Only "1" and "0" pass: `full=true` is a 400 (PC JSONSchema.pm).
      if (text !== '1' && text !== '0') return { ok: false, error: pveText.typeCheck('boolean', text) };
      return { ok: true, value: text === '1' };
    case 'integer': {
      if (!/^-?\d+$/.test(text)) return { ok: false, error: pveText.typeCheck('integer', text) };
      const n = Number(text);
      if (spec.minimum !== undefined && n < spec.minimum) {
        return { ok: false, error: `value must have a minimum value of ${spec.minimum}` };
      }
      if (spec.maximum !== undefined && n > spec.maximum) {
        return { ok: false, error: `value must have a maximum value of ${spec.maximum}` };
      }
      return { ok: true, value: n };
    }
    case 'dns-name':
      if (!DNS_NAME.test(text)) return { ok: false, error: pveText.notDnsName };
      return { ok: true, value: text };
    case 'string':
      if (spec.enum && !spec.enum.includes(text)) {
        return {
          ok: false,
          error: `value '${text}' does not have a value in the enumeration '${spec.enum.join(', ')}'`,
        };
      }
      if (spec.maxLength !== undefined && text.length > spec.maxLength) {
        return { ok: false, error: `value may only be ${spec.maxLength} characters long` };
      }
      return { ok: true, value: text };
  }
}

/** Validates and converts params; throws PVE's 400 with every bad property listed. */
export function checkParams(raw: RawParams, schema: Schema): Record<string, unknown> {
  const errors: Record<string, string> = {};
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    const spec = schema[key];
    if (!spec) {
      errors[key] = pveText.notInSchema;
      continue;
    }
    const result = checkOne(spec, value);
    if (result.ok) out[key] = result.value;
    else errors[key] = result.error;
  }
  for (const [key, spec] of Object.entries(schema)) {
    if (!spec.optional && !(key in raw)) errors[key] = pveText.missingProperty;
  }
  if (Object.keys(errors).length > 0) throw paramError(errors);
  return out;
}
