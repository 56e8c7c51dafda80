// Splitting a process's output into log lines. A line longer than the bound is cut into pieces,
// so a process that never writes a newline cannot make the executor buffer without limit.
import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';

export const MAX_LOG_LINE_BYTES = 64 * 1024;

export function forwardLines(stream: Readable, onLine: (line: string) => void, maxLineBytes = MAX_LOG_LINE_BYTES): void {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  const emit = (text: string) => {
    // Diego's log lines drop the trailing newline and carriage return.
    onLine(text.endsWith('\r') ? text.slice(0, -1) : text);
  };
  const take = (text: string) => {
    pending += text;
    for (let newline = pending.indexOf('\n'); newline !== -1; newline = pending.indexOf('\n')) {
      emit(pending.slice(0, newline));
      pending = pending.slice(newline + 1);
    }
    while (pending.length > maxLineBytes) {
      emit(pending.slice(0, maxLineBytes));
      pending = pending.slice(maxLineBytes);
    }
  };
  stream.on('data', (chunk: Buffer) => take(decoder.write(chunk)));
  stream.on('end', () => {
    take(decoder.end());
    if (pending.length > 0) emit(pending);
    pending = '';
  });
}
