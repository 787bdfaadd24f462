// The message of anything thrown, for putting into our own error messages.
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
