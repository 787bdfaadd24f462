// How a PVE VM is recognised as an Hourglass sandbox: tag `hourglass` plus a tag that encodes the
// sandbox id losslessly; the name and a description line carry it too, from the clone onwards.

/** Every Hourglass VM carries this tag; list()/the reaper never look at VMs without it. */
export const OWNER_TAG = 'hourglass';
const ID_TAG_PREFIX = 'hg-id.';
const DESCRIPTION_MARKER = 'hourglass-sandbox-id: ';

/**
 * PVE tags allow only `[a-z0-9_][a-z0-9_\-+.]*` and are lower-cased (notes §4), so any other byte
 * of the id is written as `_xx` (hex of its UTF-8 byte); `_` itself becomes `_5f`.
 */
export function idTag(sandboxId: string): string {
  let out = '';
  for (const byte of Buffer.from(sandboxId, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += /[a-z0-9.\-]/.test(ch) ? ch : `_${byte.toString(16).padStart(2, '0')}`;
  }
  return ID_TAG_PREFIX + out;
}

/** The sandbox id in an id tag, or undefined when the tag is not one. */
export function sandboxIdFromTag(tag: string): string | undefined {
  if (!tag.startsWith(ID_TAG_PREFIX)) return undefined;
  const encoded = tag.slice(ID_TAG_PREFIX.length);
  const bytes: number[] = [];
  for (let i = 0; i < encoded.length; i++) {
    if (encoded[i] === '_') {
      const hex = encoded.slice(i + 1, i + 3);
      if (!/^[0-9a-f]{2}$/.test(hex)) return undefined;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else bytes.push(encoded.charCodeAt(i));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** PVE's `tags` field is `a;b` (and may use `,` or spaces when written by hand). */
export function parseTags(tags: string | undefined): string[] {
  return (tags ?? '').split(/[;, ]+/).filter(Boolean).map((t) => t.toLowerCase());
}

/** The sandbox id of a VM whose tags mark it as Hourglass's, else undefined. */
export function sandboxIdOfTags(tags: string | undefined): string | undefined {
  const list = parseTags(tags);
  if (!list.includes(OWNER_TAG)) return undefined;
  for (const tag of list) {
    const id = sandboxIdFromTag(tag);
    if (id !== undefined) return id;
  }
  return undefined;
}

/** A readable DNS name (PVE's `name` is a dns-name): `hg-<id>` with other characters as `-`. */
export function vmName(sandboxId: string): string {
  const slug = sandboxId.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-+/g, '-').replace(/^-|-$/g, '');
  return `hg-${slug || 'sandbox'}`.slice(0, 63).replace(/-+$/, '');
}

/** Set at clone time, so a VM whose tagging never happened is still recognisable as ours. */
export function vmDescription(sandboxId: string, template: string, labels: Record<string, string>): string {
  const labelLines = Object.entries(labels).map(([k, v]) => `label ${k}: ${v}`);
  return [`Hourglass sandbox (destroyed when its lease ends; do not edit).`, `${DESCRIPTION_MARKER}${sandboxId}`, `template: ${template}`, ...labelLines].join('\n');
}

export function descriptionNamesSandbox(description: unknown, sandboxId: string): boolean {
  return typeof description === 'string' && description.split('\n').includes(`${DESCRIPTION_MARKER}${sandboxId}`);
}
