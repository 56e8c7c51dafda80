// Throwaway certificates for TLS tests, made with the system openssl: a CA, a server certificate
// for 127.0.0.1 signed by it, a client certificate signed by it, and a second CA with a client
// certificate of its own (a client the first CA does not vouch for). EC P-256 keys, valid a day.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CertFiles {
  cert: string;
  key: string;
}

export interface TestCerts {
  dir: string;
  /** The CA that signed `server` and `client`. */
  caFile: string;
  server: CertFiles;
  client: CertFiles;
  /** A client certificate from another CA. */
  stranger: CertFiles;
  /** PEM contents of a file above. */
  read(path: string): Buffer;
  remove(): void;
}

export function makeTestCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'ccbridge-certs-'));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const makeCa = (name: string) => openssl('req', '-x509', ...ecKey, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-subj', `/CN=ccbridge-test-${name}`, '-days', '1');
  makeCa('ca');
  makeCa('other-ca');
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  const issue = (name: string, ca: string, extensions: string[]) => {
    openssl('req', ...ecKey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', ...extensions);
  };
  issue('server', 'ca', ['-extfile', 'server.ext']);
  issue('client', 'ca', []);
  issue('stranger', 'other-ca', []);
  const files = (name: string): CertFiles => ({ cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) });
  return {
    dir,
    caFile: join(dir, 'ca.crt'),
    server: files('server'),
    client: files('client'),
    stranger: files('stranger'),
    read: (path) => readFileSync(path),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
