// One Hourglass at a time runs the embedded services of a state dir. The lock file records the
// holder's pid and start time: a holder that is gone (a crash, SIGKILL) left a stale lock, which
// the next start takes over — and then every PostgreSQL or Temporal still running on this state
// dir's data is an orphan of that crash.
import { link, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isAlive, processStartTime } from '../hypervisors/common/proc-identity';

export interface LockHolder {
  pid: number;
  startTime: string;
  startedAt: string;
  command: string;
}

export interface ServiceLock {
  path: string;
  /** The crashed run whose lock was taken over, if any. */
  staleHolder?: LockHolder;
  release(): Promise<void>;
}

export class ServiceLockHeldError extends Error {}

export const LOCK_FILE = 'service.lock';

export async function acquireServiceLock(stateDir: string): Promise<ServiceLock> {
  const lockPath = path.join(stateDir, LOCK_FILE);
  const me: LockHolder = {
    pid: process.pid,
    startTime: (await processStartTime(process.pid)) ?? '',
    startedAt: new Date().toISOString(),
    command: process.argv.slice(1).join(' '),
  };
  let staleHolder: LockHolder | undefined;
  for (let attempt = 0; attempt < 5; attempt++) {
    if (await createExclusively(lockPath, me)) {
      return { path: lockPath, ...(staleHolder ? { staleHolder } : {}), release: () => releaseIfOurs(lockPath, me) };
    }
    const holder = await readHolder(lockPath);
    if (holder === 'missing') continue; // released meanwhile
    if (holder !== 'unreadable' && (await isAlive(holder))) {
      throw new ServiceLockHeldError(
        `another Hourglass (pid ${holder.pid}, started ${holder.startedAt}: ${holder.command}) ` +
          `runs the embedded services of ${stateDir}. ` +
          `Stop it first (kill -TERM ${holder.pid}, or Ctrl-C in its terminal), ` +
          'or give this one its own HOURGLASS_STATE_DIR.',
      );
    }
    // Stale. Move it aside and check that what moved is the lock judged stale: a racing start may
    // have replaced it with a live one in between, which then goes back.
    const aside = `${lockPath}.stale-${process.pid}`;
    try {
      await rename(lockPath, aside);
    } catch {
      continue;
    }
    const moved = await readHolder(aside);
    if (holder !== 'unreadable' && moved !== 'missing' && moved !== 'unreadable' && !sameHolder(moved, holder)) {
      await rename(aside, lockPath).catch(() => {});
      continue;
    }
    await unlink(aside).catch(() => {});
    if (holder !== 'unreadable') staleHolder = holder;
  }
  throw new Error(
    `could not take ${lockPath}: it kept changing (several Hourglass processes starting at once on ${stateDir}?)`,
  );
}

async function createExclusively(lockPath: string, me: LockHolder): Promise<boolean> {
  // Write the whole record first, then link it into place: link() fails if the lock exists, and
  // no reader ever sees a half-written lock.
  const tmp = `${lockPath}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(me, null, 2) + '\n', { mode: 0o644 });
  try {
    await link(tmp, lockPath);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

async function readHolder(file: string): Promise<LockHolder | 'missing' | 'unreadable'> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'unreadable';
  }
  try {
    const h = JSON.parse(text) as Partial<LockHolder>;
    if (typeof h.pid !== 'number' || typeof h.startTime !== 'string') return 'unreadable';
    return {
      pid: h.pid,
      startTime: h.startTime,
      startedAt: String(h.startedAt ?? '?'),
      command: String(h.command ?? '?'),
    };
  } catch {
    return 'unreadable'; // a crash while writing cannot leave this (see createExclusively), a person can
  }
}

function sameHolder(a: LockHolder, b: LockHolder): boolean {
  return a.pid === b.pid && a.startTime === b.startTime;
}

async function releaseIfOurs(lockPath: string, me: LockHolder): Promise<void> {
  const holder = await readHolder(lockPath);
  if (holder !== 'missing' && holder !== 'unreadable' && sameHolder(holder, me)) await unlink(lockPath).catch(() => {});
}
