// The embedded PostgreSQL's passwords: generated on first start, kept in one file of the state
// dir that only its owner can read (0600).
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { z } from 'zod';

const role = z.object({ name: z.string().regex(/^[a-z_][a-z0-9_]*$/), password: z.string().min(16) });
const credentialsSchema = z.object({
  /** The bootstrap superuser: only Hourglass's start-up uses it (roles, ownership). */
  superuser: role,
  /** What the registry connects as: owner of its database, nothing more. */
  app: role,
  database: z.string().regex(/^[a-z_][a-z0-9_]*$/),
});
export type EmbeddedCredentials = z.infer<typeof credentialsSchema>;

export const CREDENTIALS_FILE = 'postgres-credentials.json';

/** Reads the credentials file, or writes a new one with fresh random passwords. */
export function loadOrCreateCredentials(file: string): EmbeddedCredentials {
  if (existsSync(file)) {
    // Whatever made it readable to others, it is private from now on.
    if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
    const parsed = credentialsSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
    if (!parsed.success) {
      throw new Error(
        `${file} is not a valid credentials file (${parsed.error.issues[0]?.message}); restore it from a backup`,
      );
    }
    return parsed.data;
  }
  const credentials: EmbeddedCredentials = {
    superuser: { name: 'postgres', password: newPassword() },
    app: { name: 'hourglass', password: newPassword() },
    database: 'hourglass',
  };
  // Written whole, then renamed into place: a crash never leaves half a file behind.
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(credentials, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, file);
  return credentials;
}

function newPassword(): string {
  return randomBytes(24).toString('base64url');
}
