import { pino, type Logger } from 'pino';

// Secrets never reach the logs: request credentials, tokens and secrets are redacted
// wherever they appear, as a second line behind code that never logs them on purpose.
export const REDACT_PATHS = [
  'headers.authorization',
  'headers["x-countersign-signature"]',
  'headers["x-slack-signature"]',
  '*.headers.authorization',
  '*.token',
  '*.secret',
  '*.password',
  'token',
  'secret',
  'password',
];

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  const options = { level, base: { service: 'countersign' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  return destination === undefined ? pino(options) : pino(options, destination);
}
