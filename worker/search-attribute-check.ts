// Start-up check: every search attribute Hourglass writes must exist on the Temporal namespace, or
// each workflow start would fail later with a server error nobody connects to configuration.
import type { Connection } from '@temporalio/client';
import { ALL_SEARCH_ATTRIBUTES } from '../workflows/search-attributes';

const CLI_TYPE: Record<string, string> = { KEYWORD: 'Keyword', DATETIME: 'Datetime', TEXT: 'Text', INT: 'Int' };

export async function checkSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = ALL_SEARCH_ATTRIBUTES.filter((a) => !(a.name in (customAttributes ?? {})));
  if (!missing.length) return;
  const commands = missing
    .map((a) => `temporal operator search-attribute create --namespace ${namespace} --name ${a.name} --type ${CLI_TYPE[a.type] ?? a.type}`)
    .join('\n  ');
  throw new Error(
    `the Temporal namespace '${namespace}' lacks the search attributes ${missing.map((a) => a.name).join(', ')} ` +
      `that Hourglass writes; add them once with:\n  ${commands}`,
  );
}
