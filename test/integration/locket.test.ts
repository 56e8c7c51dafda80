import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { ServerCredentials } from '@grpc/grpc-js';
import { ClientError, createChannel, Status } from 'nice-grpc';
import { HealthDefinition } from 'nice-grpc-server-health';
import {
  connectToLocket,
  createLockRunner,
  createPresenceRunner,
  LockRunnerConfigError,
  type LocketClient,
  type LockLoss,
  type LockRunner,
  type LockRunnerOptions,
} from '../../clients/locket/index.js';
import {
  createLocketService,
  LOCKET_DATABASE_FILE,
  LocketSchemaError,
  openLocketDatabase,
  startEmbeddedLocket,
  type EmbeddedLocket,
} from '../../embedded/locket/index.js';
import { LocketDefinition, TypeCode, type LockRequest } from '../../gen/locket/locket.js';
import { createGrpcClient, startGrpcServer } from '../../lib/grpc.js';
import { silentLogger } from '../../lib/log.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const logger = silentLogger();
const TTL_SECONDS = 1;
const RETRY_MS = 25;

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ccbridge-locket-'));
  tempDirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

async function waitFor(what: string, predicate: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const giveUpAt = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > giveUpAt) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function grpcError(code: Status, message: string) {
  return (error: unknown) => {
    assert.ok(error instanceof ClientError, `expected a ClientError, got ${String(error)}`);
    assert.equal(Status[error.code], Status[code]);
    assert.equal(error.details, message);
    return true;
  };
}

function lockRequest(key: string, owner: string, ttlInSeconds: number | string = 60, extra: Partial<LockRequest['resource']> = {}) {
  return { resource: { key, owner, value: '', typeCode: TypeCode.LOCK, ...extra }, ttlInSeconds: String(ttlInSeconds) };
}

/** A running embedded Locket plus a client of it, for one describe block. */
async function startLocket(options: Partial<Parameters<typeof startEmbeddedLocket>[0]> = {}) {
  const dataDir = options.dataDir ?? tempDir();
  const locket = await startEmbeddedLocket({ dataDir, port: 0, logger, sweepIntervalMs: 20, ...options });
  const connection = connectToLocket({ address: locket.address, defaultDeadlineMs: 2_000 });
  return {
    locket,
    dataDir,
    client: connection.client,
    async stop() {
      connection.close();
      await locket.close(0);
    },
  };
}

describe('embedded Locket', () => {
  let server: Awaited<ReturnType<typeof startLocket>>;
  let client: LocketClient;
  before(async () => {
    server = await startLocket();
    client = server.client;
  });
  after(() => server.stop());

  test('Lock, Fetch and Release follow the owner', async () => {
    await client.lock(lockRequest('bulker', 'owner-a', 60, { value: 'v1' }));
    const fetched = await client.fetch({ key: 'bulker' });
    assert.deepEqual(fetched.resource, { key: 'bulker', owner: 'owner-a', value: 'v1', type: 'lock', typeCode: TypeCode.LOCK });

    await assert.rejects(client.lock(lockRequest('bulker', 'owner-b')), grpcError(Status.ALREADY_EXISTS, 'lock-collision'));
    await client.lock(lockRequest('bulker', 'owner-a', 60, { value: 'v2' }));
    assert.equal((await client.fetch({ key: 'bulker' })).resource?.value, 'v2');

    await assert.rejects(client.release({ resource: { key: 'bulker', owner: 'owner-b' } }), grpcError(Status.ALREADY_EXISTS, 'lock-collision'));
    await client.release({ resource: { key: 'bulker', owner: 'owner-a' } });
    await assert.rejects(client.fetch({ key: 'bulker' }), grpcError(Status.NOT_FOUND, 'resource-not-found'));
    await assert.rejects(client.release({ resource: { key: 'bulker', owner: 'owner-a' } }), grpcError(Status.NOT_FOUND, 'resource-not-found'));
    await client.lock(lockRequest('bulker', 'owner-b'));
    assert.equal((await client.fetch({ key: 'bulker' })).resource?.owner, 'owner-b');
  });

  test('Lock validates TTL, owner and type as the real Locket does', async () => {
    await assert.rejects(client.lock(lockRequest('k', 'o', 0)), grpcError(Status.INVALID_ARGUMENT, 'invalid-ttl'));
    await assert.rejects(client.lock(lockRequest('k', 'o', -5)), grpcError(Status.INVALID_ARGUMENT, 'invalid-ttl'));
    await assert.rejects(client.lock(lockRequest('k', '')), grpcError(Status.INVALID_ARGUMENT, 'invalid-owner'));
    await assert.rejects(client.lock(lockRequest('k', 'o', 60, { typeCode: TypeCode.UNKNOWN })), grpcError(Status.NOT_FOUND, 'invalid-type'));
    await assert.rejects(client.lock(lockRequest('k', 'o', 60, { type: 'presence' })), grpcError(Status.NOT_FOUND, 'invalid-type'));
    await assert.rejects(client.lock(lockRequest('k', 'o', 60, { typeCode: 7 as TypeCode })), grpcError(Status.NOT_FOUND, 'invalid-type'));

    // An old client that only sends the deprecated type string.
    await client.lock(lockRequest('old-client', 'o', 60, { typeCode: TypeCode.UNKNOWN, type: 'lock' }));
    const fetched = await client.fetch({ key: 'old-client' });
    assert.equal(fetched.resource?.typeCode, TypeCode.LOCK);
    assert.equal(fetched.resource?.type, 'lock');
  });

  test('FetchAll filters by type code and by the deprecated type string', async () => {
    await client.lock(lockRequest('fa-lock', 'o1'));
    await client.lock(lockRequest('fa-cell-1', 'cell-1', 60, { typeCode: TypeCode.PRESENCE }));
    await client.lock(lockRequest('fa-cell-2', 'cell-2', 60, { typeCode: TypeCode.UNKNOWN, type: 'presence' }));

    const presences = (await client.fetchAll({ typeCode: TypeCode.PRESENCE })).resources.map((r) => r.key);
    assert.deepEqual(presences.filter((key) => key.startsWith('fa-')), ['fa-cell-1', 'fa-cell-2']);
    const locks = (await client.fetchAll({ typeCode: TypeCode.LOCK })).resources.map((r) => r.key);
    assert.ok(locks.includes('fa-lock'));
    assert.ok(!locks.some((key) => key.startsWith('fa-cell')));
    const byString = (await client.fetchAll({ type: 'presence' })).resources.map((r) => r.key);
    assert.deepEqual(byString.filter((key) => key.startsWith('fa-')), ['fa-cell-1', 'fa-cell-2']);
    await assert.rejects(client.fetchAll({}), grpcError(Status.NOT_FOUND, 'invalid-type'));
  });

  test('answers gRPC health checks', async () => {
    const channel = createChannel(server.locket.address);
    try {
      const health = createGrpcClient(HealthDefinition, channel, { defaultDeadlineMs: 2_000 });
      assert.equal((await health.check({ service: 'models.Locket' })).status, 1);
    } finally {
      channel.close();
    }
  });
});

describe('embedded Locket expiry', () => {
  test('an expired lock is gone on the next access, and a new owner can take it', async () => {
    let nowMs = Date.now();
    const server = await startLocket({ clock: { now: () => nowMs }, sweepIntervalMs: 0 });
    try {
      await server.client.lock(lockRequest('watcher', 'owner-a', 5));
      nowMs += 4_999;
      assert.equal((await server.client.fetch({ key: 'watcher' })).resource?.owner, 'owner-a');
      await assert.rejects(server.client.lock(lockRequest('watcher', 'owner-b', 5)), grpcError(Status.ALREADY_EXISTS, 'lock-collision'));
      // A refresh by the owner restarts the TTL.
      await server.client.lock(lockRequest('watcher', 'owner-a', 5));
      nowMs += 4_999;
      assert.equal((await server.client.fetch({ key: 'watcher' })).resource?.owner, 'owner-a');
      nowMs += 1;
      await assert.rejects(server.client.fetch({ key: 'watcher' }), grpcError(Status.NOT_FOUND, 'resource-not-found'));
      assert.equal((await server.client.fetchAll({ typeCode: TypeCode.LOCK })).resources.length, 0);
      await assert.rejects(server.client.release({ resource: { key: 'watcher', owner: 'owner-a' } }), grpcError(Status.NOT_FOUND, 'resource-not-found'));
      await server.client.lock(lockRequest('watcher', 'owner-b', 5));
      assert.equal((await server.client.fetch({ key: 'watcher' })).resource?.owner, 'owner-b');
    } finally {
      await server.stop();
    }
  });

  test('the periodic sweep deletes expired rows without any access', async () => {
    let nowMs = Date.now();
    const server = await startLocket({ clock: { now: () => nowMs }, sweepIntervalMs: 10 });
    const reader = new Database(join(server.dataDir, LOCKET_DATABASE_FILE), { readonly: true });
    try {
      await server.client.lock(lockRequest('swept', 'owner-a', 1));
      const rows = () => (reader.prepare('SELECT count(*) AS n FROM locks').get() as { n: number }).n;
      assert.equal(rows(), 1);
      nowMs += 1_000;
      await waitFor('the sweep to delete the expired row', () => rows() === 0, 2_000);
    } finally {
      reader.close();
      await server.stop();
    }
  });
});

describe('createLocketService on a database the caller owns', () => {
  test('sweepExpired counts what it deletes, and close() leaves the database open', async () => {
    let nowMs = Date.now();
    const db = openLocketDatabase(tempDir());
    const service = createLocketService({ db, clock: { now: () => nowMs }, logger, sweepIntervalMs: 0 });
    const running = await startGrpcServer({ services: [{ definition: LocketDefinition, implementation: service.implementation }], logger });
    const connection = connectToLocket({ address: running.address, defaultDeadlineMs: 2_000 });
    try {
      await connection.client.lock(lockRequest('a', 'owner-a', 1));
      await connection.client.lock(lockRequest('b', 'owner-b', 2));
      assert.equal(service.sweepExpired(), 0);
      nowMs += 1_000;
      assert.equal(service.sweepExpired(), 1);
      assert.deepEqual((await connection.client.fetchAll({ typeCode: TypeCode.LOCK })).resources.map((r) => r.key), ['b']);
    } finally {
      connection.close();
      await running.close(0);
      service.close();
    }
    assert.equal((db.prepare('SELECT count(*) AS n FROM locks').get() as { n: number }).n, 1);
    db.close();
  });
});

describe('embedded Locket storage', () => {
  test('locks survive a restart on the same data directory', async () => {
    const dataDir = tempDir();
    const first = await startLocket({ dataDir });
    await first.client.lock(lockRequest('nsync_bulker', 'owner-a', 60, { value: 'kept' }));
    await first.client.lock(lockRequest('cell-z', 'cell-z', 60, { typeCode: TypeCode.PRESENCE }));
    await first.stop();

    const second = await startLocket({ dataDir });
    try {
      const fetched = await second.client.fetch({ key: 'nsync_bulker' });
      assert.equal(fetched.resource?.owner, 'owner-a');
      assert.equal(fetched.resource?.value, 'kept');
      await assert.rejects(second.client.lock(lockRequest('nsync_bulker', 'owner-b')), grpcError(Status.ALREADY_EXISTS, 'lock-collision'));
      assert.deepEqual((await second.client.fetchAll({ typeCode: TypeCode.PRESENCE })).resources.map((r) => r.key), ['cell-z']);
    } finally {
      await second.stop();
    }
  });

  test('the schema version is recorded, and a newer schema is refused', () => {
    const dataDir = tempDir();
    const db = openLocketDatabase(dataDir);
    assert.deepEqual(db.prepare('SELECT version FROM schema_version').all(), [{ version: 1 }]);
    db.prepare('UPDATE schema_version SET version = 99').run();
    db.close();
    assert.throws(() => openLocketDatabase(dataDir), LocketSchemaError);
  });
});

/**
 * Samples the Locket and the runners' own flags together. A runner that reports isHeld both
 * before and after a FetchAll must be the owner that FetchAll saw; two runners must never report
 * isHeld at the same time.
 */
function startHolderSampler(client: LocketClient, key: string, runners: Record<string, LockRunner>) {
  const violations: string[] = [];
  let samples = 0;
  let running = true;
  const heldBy = () => Object.entries(runners).filter(([, runner]) => runner.isHeld).map(([owner]) => owner);
  const loop = (async () => {
    while (running) {
      const before = heldBy();
      const { resources } = await client.fetchAll({ typeCode: TypeCode.LOCK });
      const afterwards = heldBy();
      const owners = resources.filter((resource) => resource.key === key).map((resource) => resource.owner);
      if (owners.length > 1) violations.push(`Locket lists ${owners.length} owners of ${key}`);
      if (before.length > 1 || afterwards.length > 1) violations.push(`isHeld overlaps: ${before} / ${afterwards}`);
      for (const owner of before.filter((name) => afterwards.includes(name))) {
        if (owners[0] !== owner) violations.push(`${owner} reports isHeld while Locket says ${owners[0] ?? 'nobody'}`);
      }
      samples++;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { violations, samples };
    },
  };
}

interface RecordedRunner {
  runner: LockRunner;
  acquiredAt: number[];
  losses: Array<LockLoss & { at: number; isHeldAtLoss: boolean }>;
}

function recordedRunner(options: Omit<LockRunnerOptions, 'logger' | 'onAcquired' | 'onLost'>): RecordedRunner {
  const acquiredAt: number[] = [];
  const losses: RecordedRunner['losses'] = [];
  const runner: LockRunner = createLockRunner({
    logger,
    ...options,
    onAcquired: () => acquiredAt.push(Date.now()),
    onLost: (loss) => losses.push({ ...loss, at: Date.now(), isHeldAtLoss: runner.isHeld }),
  });
  return { runner, acquiredAt, losses };
}

/** A holder in its own process, so that it can be killed without a chance to release. */
async function startHolderProcess(address: string, key: string, owner: string): Promise<ChildProcess> {
  const program = `
    const { createLockRunner } = await import(${JSON.stringify(new URL('../../clients/locket/index.ts', import.meta.url).href)});
    const { silentLogger } = await import(${JSON.stringify(new URL('../../lib/log.ts', import.meta.url).href)});
    createLockRunner({
      address: ${JSON.stringify(address)}, key: ${JSON.stringify(key)}, owner: ${JSON.stringify(owner)},
      ttlSeconds: ${TTL_SECONDS}, retryIntervalMs: ${RETRY_MS}, logger: silentLogger(),
      onAcquired: () => process.stdout.write('acquired\\n'),
    }).start();
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', program], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('holder process did not acquire within 10 s')), 10_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('acquired')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`holder process exited early with ${code}`)));
  });
  return child;
}

describe('lock runner', () => {
  let server: Awaited<ReturnType<typeof startLocket>>;
  before(async () => {
    server = await startLocket();
  });
  after(() => server.stop());

  test('one runner holds while the other waits; stop() hands the lock over', async () => {
    const key = 'handover';
    const a = recordedRunner({ client: server.client, key, owner: 'a', ttlSeconds: TTL_SECONDS, retryIntervalMs: RETRY_MS });
    const b = recordedRunner({ client: server.client, key, owner: 'b', ttlSeconds: TTL_SECONDS, retryIntervalMs: RETRY_MS });
    a.runner.start();
    await waitFor('a to hold', () => a.runner.isHeld, 2_000);
    const sampler = startHolderSampler(server.client, key, { a: a.runner, b: b.runner });
    b.runner.start();
    // b keeps trying for longer than a TTL: a's refreshes keep it out.
    await new Promise((resolve) => setTimeout(resolve, TTL_SECONDS * 1000 + 200));
    assert.equal(b.runner.isHeld, false);
    assert.equal(b.acquiredAt.length, 0);
    assert.equal(a.losses.length, 0);

    await a.runner.stop();
    await waitFor('b to hold after a released', () => b.runner.isHeld, 2_000);
    assert.equal((await server.client.fetch({ key })).resource?.owner, 'b');
    await b.runner.stop();
    await assert.rejects(server.client.fetch({ key }), grpcError(Status.NOT_FOUND, 'resource-not-found'));
    const { violations, samples } = await sampler.stop();
    assert.deepEqual(violations, []);
    assert.ok(samples > 10, `only ${samples} samples`);
    assert.equal(a.losses.length, 0, 'stop() is not a loss');
  });

  test('a killed holder is replaced once its TTL runs out', async () => {
    const key = 'killed-holder';
    const holder = await startHolderProcess(server.locket.address, key, 'doomed');
    const standby = recordedRunner({ client: server.client, key, owner: 'standby', ttlSeconds: TTL_SECONDS, retryIntervalMs: RETRY_MS });
    const sampler = startHolderSampler(server.client, key, { standby: standby.runner });
    try {
      standby.runner.start();
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(standby.runner.isHeld, false);
      const killedAt = Date.now();
      holder.kill('SIGKILL');
      await waitFor('the standby to hold', () => standby.runner.isHeld, TTL_SECONDS * 1000 + RETRY_MS + 2_000);
      assert.ok(standby.acquiredAt[0]! > killedAt);
      assert.equal((await server.client.fetch({ key })).resource?.owner, 'standby');
    } finally {
      holder.kill('SIGKILL');
      await standby.runner.stop();
    }
    const { violations } = await sampler.stop();
    assert.deepEqual(violations, []);
  });

  test('a holder cut off from Locket reports the loss when its TTL runs out, before anyone else holds', async () => {
    const key = 'partitioned';
    let partitioned = false;
    // The holder's view of Locket: the real client, except that calls fail while "partitioned".
    const flakyClient: LocketClient = {
      ...server.client,
      lock: (request, options) =>
        partitioned
          ? Promise.reject(new ClientError('/models.Locket/Lock', Status.UNAVAILABLE, 'partitioned'))
          : server.client.lock(request, options),
    };
    const holder = recordedRunner({ client: flakyClient, key, owner: 'holder', ttlSeconds: TTL_SECONDS, retryIntervalMs: RETRY_MS });
    const standby = recordedRunner({ client: server.client, key, owner: 'standby', ttlSeconds: TTL_SECONDS, retryIntervalMs: RETRY_MS });
    holder.runner.start();
    await waitFor('the holder to hold', () => holder.runner.isHeld, 2_000);
    const sampler = startHolderSampler(server.client, key, { holder: holder.runner, standby: standby.runner });
    standby.runner.start();
    partitioned = true;
    await waitFor('the standby to hold', () => standby.runner.isHeld, TTL_SECONDS * 1000 + RETRY_MS + 2_000);

    assert.equal(holder.losses.length, 1);
    assert.equal(holder.losses[0]!.reason, 'ttl-elapsed');
    assert.equal(holder.losses[0]!.isHeldAtLoss, false);
    assert.ok(holder.losses[0]!.at <= standby.acquiredAt[0]!, 'the holder must give up before the standby acquires');

    partitioned = false;
    // Back in touch, the old holder only collides: it stays a standby.
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(holder.runner.isHeld, false);
    assert.equal(holder.acquiredAt.length, 1);
    await holder.runner.stop();
    await standby.runner.stop();
    const { violations } = await sampler.stop();
    assert.deepEqual(violations, []);
  });

  test('a refresh that finds another owner reports the loss at once', async () => {
    const key = 'taken-over';
    const refreshIntervalMs = 100;
    const holder = recordedRunner({ client: server.client, key, owner: 'holder', ttlSeconds: 10, retryIntervalMs: RETRY_MS, refreshIntervalMs });
    holder.runner.start();
    await waitFor('the holder to hold', () => holder.runner.isHeld, 2_000);
    // The row changes hands behind the holder's back (as after an expiry it did not notice).
    await server.client.release({ resource: { key, owner: 'holder' } });
    await server.client.lock(lockRequest(key, 'intruder', 10));
    const takenAt = Date.now();
    await waitFor('onLost', () => holder.losses.length > 0, 10 * refreshIntervalMs);
    assert.equal(holder.losses[0]!.reason, 'lock-collision');
    assert.ok(holder.losses[0]!.error instanceof ClientError);
    assert.equal(holder.losses[0]!.isHeldAtLoss, false);
    assert.ok(holder.losses[0]!.at - takenAt < 10 * refreshIntervalMs);
    await holder.runner.stop();
    assert.equal((await server.client.fetch({ key })).resource?.owner, 'intruder', "stop() must not release another owner's lock");
  });

  test('reports ttl-elapsed when Locket goes away', async () => {
    const own = await startLocket();
    const holder = recordedRunner({ client: own.client, key: 'gone', owner: 'holder', ttlSeconds: TTL_SECONDS, retryIntervalMs: RETRY_MS });
    holder.runner.start();
    await waitFor('the holder to hold', () => holder.runner.isHeld, 2_000);
    await own.locket.close(0);
    await waitFor('onLost', () => holder.losses.length > 0, TTL_SECONDS * 1000 + 2_000);
    assert.equal(holder.losses[0]!.reason, 'ttl-elapsed');
    assert.equal(holder.runner.isHeld, false);
    await holder.runner.stop();
    await own.stop();
  });

  test('a presence is the same runner with type PRESENCE', async () => {
    const presence = createPresenceRunner({ client: server.client, key: 'cell-1', owner: 'cell-1', ttlSeconds: TTL_SECONDS, retryIntervalMs: RETRY_MS, logger });
    presence.start();
    await waitFor('the presence to be held', () => presence.isHeld, 2_000);
    const presences = (await server.client.fetchAll({ typeCode: TypeCode.PRESENCE })).resources;
    assert.deepEqual(presences.map((r) => [r.key, r.owner, r.typeCode]), [['cell-1', 'cell-1', TypeCode.PRESENCE]]);
    assert.ok(!(await server.client.fetchAll({ typeCode: TypeCode.LOCK })).resources.some((r) => r.key === 'cell-1'));
    await presence.stop();
    assert.equal((await server.client.fetchAll({ typeCode: TypeCode.PRESENCE })).resources.length, 0);
  });

  test('rejects settings that cannot keep a lock', () => {
    const base = { client: server.client, key: 'k', owner: 'o', ttlSeconds: 1, retryIntervalMs: 10, logger };
    assert.throws(() => createLockRunner({ ...base, ttlSeconds: 0.5 }), LockRunnerConfigError);
    assert.throws(() => createLockRunner({ ...base, refreshIntervalMs: 1_000 }), LockRunnerConfigError);
    assert.throws(() => createLockRunner({ ...base, owner: '' }), LockRunnerConfigError);
    assert.throws(() => createLockRunner({ ...base, address: '127.0.0.1:1' }), LockRunnerConfigError);
  });
});

describe('lock runner over mutual TLS', () => {
  let certs: { caFile: string; certFile: string; keyFile: string; serverCert: string; serverKey: string };
  let locket: EmbeddedLocket;

  before(async () => {
    const dir = tempDir();
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    openssl('req', '-x509', ...ecKey, '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=ccbridge-test-ca', '-days', '1');
    writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\n');
    for (const name of ['server', 'client']) {
      openssl('req', ...ecKey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
      const extensions = name === 'server' ? ['-extfile', 'server.ext'] : [];
      openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', ...extensions);
    }
    certs = {
      caFile: join(dir, 'ca.crt'),
      certFile: join(dir, 'client.crt'),
      keyFile: join(dir, 'client.key'),
      serverCert: join(dir, 'server.crt'),
      serverKey: join(dir, 'server.key'),
    };
    const credentials = ServerCredentials.createSsl(
      readFileSync(certs.caFile),
      [{ cert_chain: readFileSync(certs.serverCert), private_key: readFileSync(certs.serverKey) }],
      true,
    );
    locket = await startEmbeddedLocket({ dataDir: tempDir(), port: 0, logger, credentials });
  });
  after(() => locket.close(0));

  test('acquires and releases with CA, certificate and key files', async () => {
    const runner = createLockRunner({
      address: locket.address,
      tls: { caFile: certs.caFile, certFile: certs.certFile, keyFile: certs.keyFile },
      key: 'tls-lock',
      owner: 'tls-owner',
      ttlSeconds: TTL_SECONDS,
      retryIntervalMs: RETRY_MS,
      logger,
    });
    runner.start();
    await waitFor('the lock over mTLS', () => runner.isHeld, 5_000);
    await runner.stop();
  });

  test('a client without a certificate is refused', async () => {
    const connection = connectToLocket({ address: locket.address, defaultDeadlineMs: 1_000 });
    try {
      await assert.rejects(connection.client.fetch({ key: 'tls-lock' }), (error: unknown) => error instanceof ClientError);
    } finally {
      connection.close();
    }
  });
});
