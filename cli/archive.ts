// The app directory as a gzipped tar, made by the system `tar` from an explicit file list, so a
// `.cfignore` (gitignore syntax, as cf reads it) and cf's default exclusions decide what is sent.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliError } from './errors.js';

/** What cf never uploads (besides what a .cfignore names). */
const DEFAULT_IGNORES = ['.cfignore', '/manifest.yml', '.gitignore', '.git', '.hg', '.svn', '_darcs', '.DS_Store'];

export interface IgnoreRule {
  negate: boolean;
  directoryOnly: boolean;
  pattern: RegExp;
}

function globToRegExp(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      // `**/` is any number of directories; a trailing `**` is everything below.
      if (glob[i + 2] === '/') {
        out += '(?:.*/)?';
        i += 2;
      } else {
        out += '.*';
        i += 1;
      }
    } else if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end < 0) out += '\\[';
      else {
        out += `[${glob.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else out += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return out;
}

/** One .cfignore line as a rule; undefined for blank lines and comments. */
export function ignoreRule(line: string): IgnoreRule | undefined {
  let text = line.replace(/\s+$/, '');
  if (text === '' || text.startsWith('#')) return undefined;
  const negate = text.startsWith('!');
  if (negate) text = text.slice(1);
  const directoryOnly = text.endsWith('/');
  if (directoryOnly) text = text.replace(/\/+$/, '');
  // A pattern with a slash before its end is relative to the directory; otherwise any depth.
  const anchored = text.includes('/');
  text = text.replace(/^\//, '');
  if (text === '') return undefined;
  return { negate, directoryOnly, pattern: new RegExp(`${anchored ? '^' : '(?:^|/)'}${globToRegExp(text)}$`) };
}

export function isIgnored(rules: readonly IgnoreRule[], relativePath: string, isDirectory: boolean): boolean {
  let ignored = false;
  for (const rule of rules) {
    if (rule.directoryOnly && !isDirectory) continue;
    if (rule.pattern.test(relativePath)) ignored = !rule.negate;
  }
  return ignored;
}

/** Paths to upload, relative and with `/`, directories before what they hold; ignored directories are not entered. */
export function filesToUpload(dir: string, rules: readonly IgnoreRule[]): string[] {
  const found: string[] = [];
  const walk = (relative: string) => {
    const entries = readdirSync(relative === '' ? dir : join(dir, relative), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
    for (const entry of entries) {
      const path = relative === '' ? entry.name : `${relative}/${entry.name}`;
      const isDirectory = entry.isDirectory();
      if (isIgnored(rules, path, isDirectory)) continue;
      found.push(path);
      if (isDirectory) walk(path);
    }
  };
  walk('');
  return found;
}

export interface PackagedApp {
  path: string;
  size: number;
  files: number;
  /** Removes the archive. */
  remove(): void;
}

export interface PackageOptions {
  /** The tar program (default: `tar` on the PATH). */
  tar?: string;
}

export async function packageDirectory(dir: string, options: PackageOptions = {}): Promise<PackagedApp> {
  let stats;
  try {
    stats = statSync(dir);
  } catch {
    throw new CliError(`${dir}: no such directory`);
  }
  if (!stats.isDirectory()) throw new CliError(`${dir} is not a directory`);
  const rules = DEFAULT_IGNORES.map(ignoreRule).filter((r): r is IgnoreRule => r !== undefined);
  try {
    rules.push(...readFileSync(join(dir, '.cfignore'), 'utf8').split(/\r?\n/).map(ignoreRule).filter((r): r is IgnoreRule => r !== undefined));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new CliError(`cannot read ${join(dir, '.cfignore')}: ${(error as Error).message}`);
  }
  const files = filesToUpload(dir, rules);
  if (files.length === 0) throw new CliError(`nothing to upload: ${dir} is empty, or its .cfignore leaves nothing`);

  const scratch = mkdtempSync(join(tmpdir(), 'ccbridge-push-'));
  const remove = () => rmSync(scratch, { recursive: true, force: true });
  try {
    const list = join(scratch, 'files');
    const archive = join(scratch, 'app.tgz');
    writeFileSync(list, `${files.join('\0')}\0`);
    // Directories are listed themselves (empty ones count), so tar must not descend on its own.
    await run(options.tar ?? 'tar', ['-czf', archive, '-C', dir, '--no-recursion', '--null', '-T', list]);
    return { path: archive, size: statSync(archive).size, files: files.length, remove };
  } catch (error) {
    remove();
    throw error;
  }
}

function run(program: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      if (stderr.length < 4096) stderr += chunk;
    });
    child.on('error', (error: NodeJS.ErrnoException) => {
      reject(new CliError(error.code === 'ENOENT' ? `the system ${program} was not found: it is needed to package the app` : `${program} did not run: ${error.message}`));
    });
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new CliError(`${program} failed to package the app (${signal ?? `exit ${code}`}): ${stderr.trim().split('\n')[0] ?? ''}`));
    });
  });
}
