// The system ssh client, as the SSH tests run it: against an instance's published SSH port, with
// the route's user key, trusting only the host key in a known_hosts file of the test's own.
import { spawn } from 'node:child_process';

export interface SshResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs ssh to its end without blocking the event loop (the Diego and cell under test share it). */
export function ssh(args: string[]): Promise<SshResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * Options for a batch login to 127.0.0.1:port that trusts only `knownHosts` (ssh keeps the first
 * value an option is given, so the known hosts file goes first) and reads no user configuration.
 */
export function sshClientArgs(knownHosts: string, port: number): string[] {
  return [
    '-o', `UserKnownHostsFile=${knownHosts}`,
    '-p', String(port),
    '-o', 'BatchMode=yes',
    '-o', 'IdentitiesOnly=yes',
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'ConnectTimeout=30',
    '-F', '/dev/null',
  ];
}
