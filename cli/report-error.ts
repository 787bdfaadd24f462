// The CLI's last word on a failed command: the API's refusal as `error: code: message` (or its
// envelope with --json), anything else described in one line.
import { HourglassApiError } from '../client/index';
import { describeError } from './describe-error';

export function reportError(err: unknown, json: boolean): void {
  if (err instanceof HourglassApiError) {
    if (json) return console.error(JSON.stringify(err.toJSON(), null, 2));
    if (err.code === 'unreachable') {
      return console.error(`error: ${err.message}; is \`npm start\` running? (set --url or HOURGLASS_URL)`);
    }
    return console.error(`error: ${err.code}: ${err.message}`);
  }
  console.error(`error: ${describeError(err)}`);
}
