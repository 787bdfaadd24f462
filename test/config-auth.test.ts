// Safe defaults and token configuration, as pure functions (no server needed).
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { limitsPolicyFromEnv, resolveLimits } from '../api/limits';
import { TokenStore } from '../api/tokens';
import { isLoopback, loadConfig } from '../config/service';

const T = 'a-long-enough-token-1234';

describe('where the API listens', () => {
  it('binds loopback by default', () => {
    expect(loadConfig({}).host).toBe('127.0.0.1');
  });

  it('refuses a non-loopback address with auth off, naming the ways out', () => {
    expect(() => loadConfig({ HOST: '0.0.0.0' })).toThrow(
      /refusing to serve the API on 0\.0\.0\.0 without authentication.*HOURGLASS_INSECURE_NO_AUTH=1/s,
    );
    expect(() => loadConfig({ HOST: '::' })).toThrow(/without authentication/);
    expect(() => loadConfig({ HOST: '10.1.2.3' })).toThrow(/without authentication/);
  });

  it('allows it with tokens, or with the explicit insecure opt-in', () => {
    expect(loadConfig({ HOST: '0.0.0.0', HOURGLASS_API_TOKEN: T }).host).toBe('0.0.0.0');
    expect(loadConfig({ HOST: '0.0.0.0', HOURGLASS_INSECURE_NO_AUTH: '1' }).insecureNoAuth).toBe(true);
  });

  it('knows loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.9.0.1', '::1', 'localhost']) expect(isLoopback(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '192.168.1.1', '128.0.0.1', 'example.com']) expect(isLoopback(h), h).toBe(false);
  });
});

describe('tokens', () => {
  it('reads owner:role:token entries from HOURGLASS_API_TOKENS, a file, and the single admin token', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hourglass-tokens-'));
    const file = path.join(dir, 'tokens');
    const hashed = createHash('sha256').update('carol-token-is-long-enough').digest('hex');
    writeFileSync(file, `# one per line\ncarol:user:sha256:${hashed}\n\nbob:user:bob-token-is-long-enough\n`);
    const store = TokenStore.fromEnv({
      HOURGLASS_API_TOKENS: `alice:user:${T},ops:admin:ops-token-is-long-enough`,
      HOURGLASS_API_TOKENS_FILE: file,
      HOURGLASS_API_TOKEN: 'legacy-admin-token-long',
    });
    expect(store.enabled).toBe(true);
    expect(store.authenticate(T)).toEqual({ owner: 'alice', role: 'user' });
    expect(store.authenticate('ops-token-is-long-enough')).toEqual({ owner: 'ops', role: 'admin' });
    expect(store.authenticate('carol-token-is-long-enough')).toEqual({ owner: 'carol', role: 'user' });
    expect(store.authenticate('bob-token-is-long-enough')).toEqual({ owner: 'bob', role: 'user' });
    expect(store.authenticate('legacy-admin-token-long')).toEqual({ owner: 'admin', role: 'admin' });
    expect(store.authenticate(`sha256:${hashed}`)).toBeUndefined(); // the hash is not the token
    expect(store.authenticate('')).toBeUndefined();
    expect(store.authenticate('é'.repeat(T.length))).toBeUndefined();
  });

  it('keeps no token in the clear', () => {
    const store = TokenStore.fromEnv({ HOURGLASS_API_TOKENS: `alice:user:${T}` });
    expect(JSON.stringify(store)).not.toContain(T);
    expect(JSON.stringify(store.owners)).toBe('[{"owner":"alice","role":"user"}]');
  });

  it('refuses bad entries with a message naming where they are', () => {
    expect(() => TokenStore.fromEnv({ HOURGLASS_API_TOKENS: 'alice:root:' + T })).toThrow(
      /entry 1: role 'root' must be user or admin/,
    );
    expect(() => TokenStore.fromEnv({ HOURGLASS_API_TOKENS: 'alice:user:short' })).toThrow(/shorter than 16/);
    expect(() => TokenStore.fromEnv({ HOURGLASS_API_TOKENS: `a b:user:${T}` })).toThrow(/owner 'a b'/);
    expect(() => TokenStore.fromEnv({ HOURGLASS_API_TOKENS: 'justatoken' })).toThrow(/expected owner:role:token/);
    expect(() => TokenStore.fromEnv({ HOURGLASS_API_TOKENS: `a:user:${T},b:admin:${T}` })).toThrow(/configured twice/);
    expect(() => TokenStore.fromEnv({ HOURGLASS_API_TOKENS_FILE: '/nonexistent/tokens' })).toThrow(/cannot read/);
  });

  it('auth is off only when no token is configured', () => {
    expect(TokenStore.fromEnv({}).enabled).toBe(false);
  });
});

describe('resource limits', () => {
  it('applies template defaults, lets the request override them, and refuses anything past the maximum', () => {
    const policy = limitsPolicyFromEnv({
      HOURGLASS_MAX_MEMORY_MIB: '2048',
      HOURGLASS_TEMPLATE_LIMITS: '{"big":{"memoryMiB":1024,"cpus":2}}',
    });
    expect(resolveLimits(policy, undefined, {})).toBeUndefined();
    expect(resolveLimits(policy, 'big', {})).toEqual({ memoryMiB: 1024, cpus: 2 });
    expect(resolveLimits(policy, 'big', { memoryMiB: 512, pids: 64 })).toEqual({ memoryMiB: 512, cpus: 2, pids: 64 });
    expect(() => resolveLimits(policy, undefined, { memoryMiB: 4096 })).toThrow(
      'limits.memoryMiB: 4096 exceeds the operator maximum 2048 (HOURGLASS_MAX_MEMORY_MIB)',
    );
  });

  it('refuses a malformed operator setting at start', () => {
    expect(() => limitsPolicyFromEnv({ HOURGLASS_MAX_PIDS: 'many' })).toThrow(
      /HOURGLASS_MAX_PIDS must be a positive number/,
    );
    expect(() => limitsPolicyFromEnv({ HOURGLASS_TEMPLATE_LIMITS: '{"x":{"ram":1}}' })).toThrow(
      /HOURGLASS_TEMPLATE_LIMITS must be JSON/,
    );
  });
});
