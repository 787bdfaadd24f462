// The SDK's log, minus one expected warning: the provision and teardown workers run activities
// only, and the SDK warns at start that they poll no workflow tasks.
import { DefaultLogger, type LogLevel, type LogMetadata } from '@temporalio/worker';

export class SdkLogger extends DefaultLogger {
  override log(level: LogLevel, message: string, meta?: LogMetadata): void {
    if (message.startsWith('No workflows registered, not polling for workflow tasks')) return;
    super.log(level, message, meta);
  }
}
