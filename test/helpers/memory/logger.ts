import type { Logger } from '../../../src/core/ports.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface LogLine {
  level: LogLevel;
  obj: object;
  msg: string | undefined;
}

/** A Logger that keeps every line, so a test can check what was (and was not) logged. */
export interface MemoryLogger extends Logger {
  readonly lines: LogLine[];
  /** The lines at one level. */
  at(level: LogLevel): LogLine[];
  /** True when some line's message contains `text` (case-sensitive). */
  said(text: string): boolean;
  clear(): void;
}

export function createMemoryLogger(): MemoryLogger {
  const lines: LogLine[] = [];
  const log = (level: LogLevel) => (obj: object, msg?: string) => {
    lines.push({ level, obj, msg });
  };
  return {
    lines,
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
    at: (level) => lines.filter((l) => l.level === level),
    said: (text) => lines.some((l) => l.msg?.includes(text) === true),
    clear() {
      lines.length = 0;
    },
  };
}
