// The floor's activity: does nothing, so what is left is Temporal's own cost per activity.
export async function noop(): Promise<void> {}
