// Where the command line writes. Results go to stdout; with --json stdout carries only the API's
// JSON, so progress moves to stderr. Long steps show a spinner when the output is a terminal and
// plain lines otherwise (a log file or a pipe gets no control characters).

export interface Output {
  write(text: string): unknown;
}

export interface TerminalOptions {
  stdout: Output;
  stderr: Output;
  /** stdout is a terminal (spinners, redrawn lines). */
  interactive: boolean;
  /** --json: stdout is for JSON only. */
  json: boolean;
  /** Spinner frame interval; the spinner's timer is the only one a terminal keeps. */
  frameMs?: number;
}

export interface Step {
  /** Changes the step's text (redrawn on a terminal; a new line otherwise, only when it changed). */
  update(text: string): void;
  /** A line printed above the step (staging log lines while staging). */
  log(line: string): void;
  /** Ends the step, leaving `text` (or the step's text) on its line. */
  done(text?: string): void;
  /** Ends the step and removes its line (a failure follows on stderr). */
  clear(): void;
}

export interface Terminal {
  json: boolean;
  /** A result line (stdout). */
  result(line: string): void;
  /** The API's JSON, pretty-printed (stdout). */
  printJson(value: unknown): void;
  /** A progress line: stdout, or stderr under --json. */
  info(line: string): void;
  /** `warning: …` on stderr. */
  warn(line: string): void;
  step(text: string): Step;
  /** Clears a spinner still drawn (before an error line). */
  settle(): void;
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const CLEAR_LINE = '\r\x1b[2K';

export function createTerminal(options: TerminalOptions): Terminal {
  const progress = options.json ? options.stderr : options.stdout;
  const spinning = options.interactive && !options.json;
  let active: { text: string; frame: number; timer: NodeJS.Timeout } | undefined;

  const draw = () => {
    if (active) progress.write(`${CLEAR_LINE}${FRAMES[active.frame % FRAMES.length]} ${active.text}`);
  };
  const erase = () => {
    if (active) progress.write(CLEAR_LINE);
  };
  const finish = () => {
    if (!active) return;
    clearInterval(active.timer);
    erase();
    active = undefined;
  };
  /** Writes a whole line to a stream without tearing the spinner drawn on the progress stream. */
  const lineTo = (stream: Output, line: string) => {
    erase();
    stream.write(`${line}\n`);
    draw();
  };

  return {
    json: options.json,
    result: (line) => lineTo(options.stdout, line),
    printJson: (value) => lineTo(options.stdout, JSON.stringify(value, null, 2)),
    info: (line) => lineTo(progress, line),
    warn: (line) => lineTo(options.stderr, `warning: ${line}`),
    step(text) {
      finish();
      let current = text;
      if (spinning) {
        active = { text, frame: 0, timer: setInterval(() => {
          if (!active) return;
          active.frame++;
          draw();
        }, options.frameMs ?? 80) };
        active.timer.unref();
        draw();
      } else {
        progress.write(`${text}\n`);
      }
      return {
        update(next) {
          if (next === current) return;
          current = next;
          if (active) {
            active.text = next;
            draw();
          } else progress.write(`${next}\n`);
        },
        log: (line) => lineTo(progress, line),
        done(final) {
          const wasSpinning = active !== undefined;
          finish();
          if (wasSpinning) progress.write(`${final ?? current}\n`);
          else if (final !== undefined && final !== current) progress.write(`${final}\n`);
        },
        clear: finish,
      };
    },
    settle: finish,
  };
}

// ---------------------------------------------------------------------------------------------
// Formatting

/** Columns padded to their widest cell; the last column is not padded. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('   ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

/** Megabytes as cf writes them: 256M, 1G. */
export function formatMb(mb: number): string {
  return mb >= 1024 && mb % 1024 === 0 ? `${mb / 1024}G` : `${mb}M`;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'K', 'M', 'G', 'T'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value}B` : `${value.toFixed(value < 10 ? 1 : 0)}${units[unit]}`;
}

/** An ISO time without milliseconds, or '-' for none. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '-';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A size as cf takes it (256, 256M, 256MB, 1G, 1GB) in megabytes; undefined when it is not one. */
export function parseMegabytes(text: string): number | undefined {
  const found = /^(\d+)\s*(M|MB|G|GB)?$/i.exec(text.trim());
  if (!found) return undefined;
  const value = Number(found[1]);
  const unit = (found[2] ?? 'M').toUpperCase();
  const mb = unit.startsWith('G') ? value * 1024 : value;
  return mb > 0 ? mb : undefined;
}
