// A small REST client for the CLI; errors carry the API's {error:{code,message}}.
export class ApiClient {
  constructor(
    private readonly baseUrl: string,
    private readonly token?: string,
  ) {}

  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: T }> {
    let res: Response;
    try {
      res = await fetch(new URL(path, this.baseUrl), {
        method,
        headers: {
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
          ...headers,
        },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
    } catch (err) {
      throw new CliError(
        `cannot reach the Hourglass API at ${this.baseUrl} (${(err as Error).message}); ` +
          'is `npm start` running? (set --url or HOURGLASS_URL)',
      );
    }
    const text = await res.text();
    const parsed = text ? JSON.parse(text) : undefined;
    if (!res.ok) {
      const e = parsed?.error;
      throw new CliError(e ? `${e.code}: ${e.message}` : `HTTP ${res.status}`, parsed);
    }
    return { status: res.status, body: parsed as T };
  }
}

export class CliError extends Error {
  constructor(
    message: string,
    readonly body?: unknown,
  ) {
    super(message);
  }
}
