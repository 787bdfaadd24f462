// What counts as this machine: one definition for where the API may listen without tokens and
// which requests an API without tokens answers.

/** 127.0.0.0/8, ::1 and localhost; 0.0.0.0 and :: are every interface. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || h === '::ffff:127.0.0.1';
}

/** A Host header (`localhost:8080`, `[::1]:8080`) naming a loopback host. */
export function isLoopbackAuthority(authority: string): boolean {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::\d{1,5})?$/.exec(authority);
  return !!m && isLoopback(m[1] ?? m[2]!);
}

/** An Origin header (`http://localhost:8233`) of a page served from loopback. */
export function isLoopbackOrigin(origin: string): boolean {
  const m = /^https?:\/\/([^/]+)$/i.exec(origin);
  return !!m && isLoopbackAuthority(m[1]!);
}
