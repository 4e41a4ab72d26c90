import { appendFileSync } from 'node:fs';
import type { LoggerService } from '@nestjs/common';

/**
 * Nest's logs of the chaos script's own clients go to a file: under chaos
 * they warn once per lost task, which would bury the table.
 */
export class FileLogger implements LoggerService {
  warnings = 0;
  errors = 0;

  constructor(private readonly path: string) {}

  log(message: unknown, context?: string): void {
    this.write('log', message, context);
  }

  warn(message: unknown, context?: string): void {
    this.warnings += 1;
    this.write('warn', message, context);
  }

  error(message: unknown, ...rest: unknown[]): void {
    this.errors += 1;
    this.write('error', message, rest.map(String).join(' '));
  }

  debug(message: unknown, context?: string): void {
    this.write('debug', message, context);
  }

  verbose(message: unknown, context?: string): void {
    this.write('verbose', message, context);
  }

  private write(level: string, message: unknown, context = ''): void {
    const time = new Date().toISOString().slice(11, 23);
    appendFileSync(this.path, `${time} ${level} [${context}] ${message}\n`);
  }
}
