// Query strings the list and feed routes parse: states comma-separated, labels as repeated `k=v`.
export function labelQuery(label: string | string[] | Record<string, string> | undefined): string[] | undefined {
  if (label === undefined) return undefined;
  if (typeof label === 'string') return [label];
  if (Array.isArray(label)) return label;
  return Object.entries(label).map(([k, v]) => `${k}=${v}`);
}

export function stateQuery(state: string | string[] | undefined): string | undefined {
  return Array.isArray(state) ? state.join(',') : state;
}
