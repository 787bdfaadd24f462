// Every search attribute Hourglass writes must exist on the Temporal namespace, or each workflow
// start fails with a server error nobody connects to configuration. The embedded dev server gets
// missing ones added (its --search-attribute flags only apply to a new database file: an upgrade
// would otherwise lack SandboxOwner); a cluster we do not own is refused at start with the commands.
import type { Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { ALL_SEARCH_ATTRIBUTES } from '../workflows/search-attributes';

const { IndexedValueType } = proto.temporal.api.enums.v1;
const INDEXED: Record<string, { cli: string; indexed: number }> = {
  KEYWORD: { cli: 'Keyword', indexed: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD },
  DATETIME: { cli: 'Datetime', indexed: IndexedValueType.INDEXED_VALUE_TYPE_DATETIME },
};

export async function ensureSearchAttributes(
  connection: Connection,
  namespace: string,
  opts: { addMissing: boolean; log: (msg: string) => void },
): Promise<void> {
  const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = ALL_SEARCH_ATTRIBUTES.filter((a) => !(a.name in (customAttributes ?? {})));
  if (!missing.length) return;
  if (opts.addMissing) {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((a) => [a.name, INDEXED[a.type]!.indexed])),
    });
    opts.log(`added the search attributes ${missing.map((a) => a.name).join(', ')} to the embedded Temporal`);
    return;
  }
  const commands = missing
    .map(
      (a) =>
        `temporal operator search-attribute create --namespace ${namespace} --name ${a.name} ` +
        `--type ${INDEXED[a.type]?.cli ?? a.type}`,
    )
    .join('\n  ');
  throw new Error(
    `the Temporal namespace '${namespace}' lacks the search attributes ${missing.map((a) => a.name).join(', ')} ` +
      `that Hourglass writes; add them once with:\n  ${commands}`,
  );
}
