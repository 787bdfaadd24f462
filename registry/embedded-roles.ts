// Roles of the embedded PostgreSQL, brought to the same state at every start:
//  - the bootstrap superuser (the credentials file's `superuser`) with a random password, used
//    only here;
//  - Hourglass's own role (`app`): LOGIN and nothing else — NOSUPERUSER NOCREATEDB NOCREATEROLE,
//    no role memberships (so no COPY … TO PROGRAM) — owner of its database and of everything in it.
// A data dir of the previous version (bootstrap superuser `hourglass`, password `hourglass`) is
// upgraded in place on the way: every step is idempotent, so a crash in the middle is finished by
// the next start.
import pg from 'pg';
import { componentLogger } from '../log/logger';
import type { EmbeddedCredentials } from './embedded-credentials';
import { inTransaction } from './transaction';

/** The previous version's one role: the bootstrap superuser, which also owned all the data. */
const LEGACY = { name: 'hourglass', password: 'hourglass' };
const log = componentLogger('registry');
/** A superuser that exists only during the upgrade: the bootstrap role cannot rename itself. */
const UPGRADE_ROLE = 'hourglass_upgrade';

export interface SocketAddress {
  socketDir: string;
  port: number;
}

export async function reconcileRoles(
  at: SocketAddress,
  creds: EmbeddedCredentials,
  log: (msg: string) => void,
): Promise<void> {
  let admin = await connectOrNull(at, creds.superuser, 'postgres');
  if (!admin) {
    const legacy = await connectOrNull(at, LEGACY, 'postgres');
    if (!legacy) {
      throw new Error(
        `cannot log in to the embedded PostgreSQL as '${creds.superuser.name}' with the password of its ` +
          'credentials file. Restore the credentials file that belongs to this data dir, or move the data dir ' +
          'away to start with an empty registry.',
      );
    }
    log(
      "upgrading the embedded PostgreSQL from the previous version's fixed superuser password: new random " +
        `passwords, '${creds.app.name}' no longer a superuser`,
    );
    await upgradeLegacyRoles(at, legacy, creds);
    admin = await connectOrNull(at, creds.superuser, 'postgres');
    if (!admin) {
      throw new Error(
        `the upgrade of the embedded PostgreSQL's roles did not take: '${creds.superuser.name}' still cannot log in`,
      );
    }
  }
  try {
    await ensureAppRole(admin, creds);
  } finally {
    await admin.end();
  }
  const inAppDb = await connectOrNull(at, creds.superuser, creds.database);
  if (!inAppDb) {
    throw new Error(
      `cannot connect to database '${creds.database}' of the embedded PostgreSQL as '${creds.superuser.name}'`,
    );
  }
  try {
    await giveEverythingToAppRole(inAppDb, creds.app.name);
  } finally {
    await inAppDb.end();
  }
}

/**
 * Legacy: `hourglass` is the bootstrap superuser and cannot lose SUPERUSER, nor be renamed by its
 * own session. So a temporary superuser renames it to the credentials' superuser name and sets its
 * new password, in one transaction; the app role is then created fresh by ensureAppRole.
 */
async function upgradeLegacyRoles(at: SocketAddress, legacy: pg.Client, creds: EmbeddedCredentials): Promise<void> {
  const superPw = legacy.escapeLiteral(creds.superuser.password);
  try {
    const { rows } = await legacy.query<{ rolsuper: boolean }>(
      'SELECT rolsuper FROM pg_roles WHERE rolname = current_user',
    );
    if (!rows[0]?.rolsuper) {
      throw new Error(
        `'${LEGACY.name}' with the previous version's password is not a superuser: ` +
          'refusing to guess what this data dir is',
      );
    }
    await legacy.query(`DO $$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${UPGRADE_ROLE}') THEN
          CREATE ROLE ${UPGRADE_ROLE} SUPERUSER LOGIN;
        END IF;
      END $$`);
    await legacy.query(`ALTER ROLE ${UPGRADE_ROLE} PASSWORD ${superPw}`);
  } finally {
    await legacy.end();
  }
  const upgrader = await connectOrNull(at, { name: UPGRADE_ROLE, password: creds.superuser.password }, 'postgres');
  if (!upgrader) throw new Error(`the temporary role ${UPGRADE_ROLE} cannot log in`);
  try {
    await inTransaction(upgrader, async (tx) => {
      await tx.query(`ALTER ROLE ${LEGACY.name} RENAME TO ${creds.superuser.name}`);
      await tx.query(`ALTER ROLE ${creds.superuser.name} PASSWORD ${superPw}`);
    });
  } catch (err) {
    throw new Error(`upgrading the roles of the embedded PostgreSQL failed: ${(err as Error).message}`);
  } finally {
    await upgrader.end();
  }
}

async function ensureAppRole(admin: pg.Client, creds: EmbeddedCredentials): Promise<void> {
  const app = creds.app.name;
  await admin.query(`DROP ROLE IF EXISTS ${UPGRADE_ROLE}`);
  await admin.query(`DO $$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${app}') THEN CREATE ROLE ${app}; END IF;
    END $$`);
  const password = admin.escapeLiteral(creds.app.password);
  await admin.query(
    `ALTER ROLE ${app} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD ${password}`,
  );
  // Membership in pg_execute_server_program & co. would hand back what NOSUPERUSER takes away.
  const { rows } = await admin.query<{ granted: string }>(
    `SELECT r.rolname AS granted FROM pg_auth_members m
       JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = $1`,
    [app],
  );
  for (const { granted } of rows) await admin.query(`REVOKE ${admin.escapeIdentifier(granted)} FROM ${app}`);
  const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [creds.database]);
  await admin.query(
    exists.rowCount
      ? `ALTER DATABASE ${creds.database} OWNER TO ${app}`
      : `CREATE DATABASE ${creds.database} OWNER ${app}`,
  );
}

/**
 * Objects the previous version's superuser created (tables, their sequences, …) now belong to the
 * app role, so its migrations can alter them. REASSIGN OWNED refuses to work on the bootstrap
 * superuser, hence one ALTER … OWNER per object. A sequence owned by a column follows its table.
 */
async function giveEverythingToAppRole(db: pg.Client, app: string): Promise<void> {
  await db.query(`DO $$
    DECLARE
      app oid := (SELECT oid FROM pg_roles WHERE rolname = '${app}');
      r record;
    BEGIN
      FOR r IN
        SELECT c.oid::regclass AS obj,
               CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                              WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END AS kind
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND c.relowner <> app
          AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
          AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                            AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))
      LOOP
        EXECUTE format('ALTER %s %s OWNER TO %I', r.kind, r.obj, '${app}');
      END LOOP;
      FOR r IN
        SELECT p.oid::regprocedure AS obj FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE p.proowner <> app AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg\\_%'
      LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO %I', r.obj, '${app}');
      END LOOP;
      FOR r IN
        SELECT t.oid::regtype AS obj, CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END AS kind
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typowner <> app AND t.typtype IN ('e', 'd', 'r', 'm')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
      LOOP
        EXECUTE format('ALTER %s %s OWNER TO %I', r.kind, r.obj, '${app}');
      END LOOP;
      FOR r IN
        SELECT n.nspname AS obj FROM pg_namespace n
        WHERE n.nspowner <> app AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'public')
          AND n.nspname NOT LIKE 'pg\\_%'
      LOOP
        EXECUTE format('ALTER SCHEMA %I OWNER TO %I', r.obj, '${app}');
      END LOOP;
    END $$`);
}

/** A client for one role, or null when the server refuses its password (or it does not exist). */
async function connectOrNull(
  at: SocketAddress,
  role: { name: string; password: string },
  database: string,
): Promise<pg.Client | null> {
  const client = new pg.Client({
    host: at.socketDir,
    port: at.port,
    user: role.name,
    password: role.password,
    database,
    connectionTimeoutMillis: 10_000,
  });
  // A dropped connection surfaces as the failed query; the event alone must not crash the process.
  client.on('error', (err) => log.warn(`embedded admin connection: ${err.message}`));
  try {
    await client.connect();
    return client;
  } catch (err) {
    await client.end().catch(() => {});
    // 28P01 invalid_password (also for a role that does not exist), 28000 invalid authorization.
    const code = (err as { code?: string }).code;
    if (code === '28P01' || code === '28000') return null;
    throw err;
  }
}
