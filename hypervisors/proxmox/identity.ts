// How a PVE VM is recognised as an Hourglass sandbox of *this* deployment: tag `hourglass`, a tag
// naming the deployment (several may share one PVE cluster), and a tag that encodes the sandbox id
// losslessly; the name and description lines carry id and deployment too, from the clone onwards.

/** Every Hourglass VM carries this tag; list()/the reaper never look at VMs without it. */
export const OWNER_TAG = 'hourglass';
const ID_TAG_PREFIX = 'hg-id.';
const DEPLOYMENT_TAG_PREFIX = 'hg-dep.';
const DESCRIPTION_MARKER = 'hourglass-sandbox-id: ';
const DEPLOYMENT_MARKER = 'hourglass-deployment: ';

/**
 * PVE tags allow only `[a-z0-9_][a-z0-9_\-+.]*` and are lower-cased (proxmox-api.md §4), so any other byte
 * of the id is written as `_xx` (hex of its UTF-8 byte); `_` itself becomes `_5f`.
 */
export function idTag(sandboxId: string): string {
  return ID_TAG_PREFIX + encodeForTag(sandboxId);
}

/** The tag that scopes a VM to one Hourglass deployment. */
export function deploymentTag(deployment: string): string {
  return DEPLOYMENT_TAG_PREFIX + encodeForTag(deployment);
}

function encodeForTag(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += /[a-z0-9.-]/.test(ch) ? ch : `_${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
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
    } else {
      bytes.push(encoded.charCodeAt(i));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** PVE's `tags` field is `a;b` (and may use `,` or spaces when written by hand). */
export function parseTags(tags: string | undefined): string[] {
  return (tags ?? '')
    .split(/[;, ]+/)
    .filter(Boolean)
    .map((t) => t.toLowerCase());
}

/** The sandbox id of a VM whose tags mark it as this deployment's, else undefined. */
export function sandboxIdOfTags(tags: string | undefined, deployment: string): string | undefined {
  const list = parseTags(tags);
  if (!list.includes(OWNER_TAG) || !list.includes(deploymentTag(deployment))) return undefined;
  for (const tag of list) {
    const id = sandboxIdFromTag(tag);
    if (id !== undefined) return id;
  }
  return undefined;
}

/** A readable DNS name (PVE's `name` is a dns-name): `hg-<id>` with other characters as `-`. */
export function vmName(sandboxId: string): string {
  const slug = sandboxId
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '');
  return `hg-${slug || 'sandbox'}`.slice(0, 63).replace(/-+$/, '');
}

/** Set at clone time, so a VM whose tagging never happened is still recognisable as ours. */
export function vmDescription(
  sandboxId: string,
  deployment: string,
  template: string,
  labels: Record<string, string>,
): string {
  const labelLines = Object.entries(labels).map(([k, v]) => `label ${k}: ${v}`);
  return [
    `Hourglass sandbox (destroyed when its lease ends; do not edit).`,
    `${DESCRIPTION_MARKER}${sandboxId}`,
    `${DEPLOYMENT_MARKER}${deployment}`,
    `template: ${template}`,
    ...labelLines,
  ].join('\n');
}

export function descriptionNamesSandbox(description: unknown, sandboxId: string, deployment: string): boolean {
  if (typeof description !== 'string') return false;
  const lines = description.split('\n');
  return lines.includes(`${DESCRIPTION_MARKER}${sandboxId}`) && lines.includes(`${DEPLOYMENT_MARKER}${deployment}`);
}
