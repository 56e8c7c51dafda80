// The embedded Diego's log-cache read API on its own port: envelopes fed in-process come back
// by source id, envelope type and time window, with limit and order as log-cache's gateway does
// it, readable by the bridge's own log-cache client (TPS stats); bounded per source, log lines
// surviving a restart.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createLogCacheClient } from '../../clients/logcache/client.js';
import { startEmbeddedDiego, type EmbeddedDiego, type EmbeddedDiegoOptions, type LogEnvelope } from '../../embedded/diego/index.js';
import { silentLogger } from '../../lib/log.js';

const logger = silentLogger();

const tempDirs: string[] = [];
after(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

function newDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ccbridge-diego-log-cache-'));
  tempDirs.push(dir);
  return dir;
}

const startDiego = (dataDir: string, options: Partial<EmbeddedDiegoOptions> = {}) =>
  startEmbeddedDiego({ logger, dataDir, port: 0, background: false, ...options });

async function read(diego: EmbeddedDiego, sourceId: string, query = ''): Promise<LogEnvelope[]> {
  const response = await fetch(`${diego.url}/api/v1/read/${encodeURIComponent(sourceId)}${query}`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'application/json');
  const body = (await response.json()) as { envelopes: { batch: LogEnvelope[] } };
  return body.envelopes.batch;
}

const payloads = (envelopes: LogEnvelope[]) => envelopes.map((envelope) => Buffer.from(envelope.log?.payload ?? '', 'base64').toString());

/** 2026-01-01T00:00:00Z in ns, plus s seconds. */
const at = (s: number) => (BigInt(Date.UTC(2026, 0, 1)) * 1_000_000n + BigInt(s) * 1_000_000_000n).toString();

describe('log-cache read API', () => {
  let diego: EmbeddedDiego;
  before(async () => {
    diego = await startDiego(newDataDir());
    // One source with logs and gauges at known times, another with a log of its own.
    for (let s = 0; s < 5; s++) {
      diego.appendEnvelope({
        source_id: 'app-1',
        instance_id: String(s % 2),
        timestamp: at(s * 10),
        tags: { source_type: 'APP/PROC/WEB' },
        log: { payload: Buffer.from(`line ${s}`).toString('base64'), type: s === 3 ? 'ERR' : 'OUT' },
      });
      diego.appendEnvelope({
        source_id: 'app-1',
        instance_id: '0',
        timestamp: at(s * 10 + 5),
        tags: { process_id: 'proc-1' },
        gauge: { metrics: { cpu: { unit: 'percentage', value: s }, memory: { unit: 'bytes', value: 1000 * s }, disk: { unit: 'bytes', value: 2000 * s } } },
      });
    }
    diego.appendEnvelope({ source_id: 'app-2', instance_id: '0', timestamp: at(1), tags: {}, log: { payload: Buffer.from('other').toString('base64'), type: 'OUT' } });
  });
  after(() => diego.close());

  test('envelopes of one source id, oldest first, as loggregator v2 JSON', async () => {
    const batch = await read(diego, 'app-1');
    assert.equal(batch.length, 10);
    const first = batch[0]!;
    assert.deepEqual(first, {
      source_id: 'app-1',
      instance_id: '0',
      timestamp: at(0),
      deprecated_tags: {},
      tags: { source_type: 'APP/PROC/WEB' },
      log: { payload: Buffer.from('line 0').toString('base64'), type: 'OUT' },
    });
    assert.deepEqual(
      batch.map((envelope) => envelope.timestamp),
      [0, 5, 10, 15, 20, 25, 30, 35, 40, 45].map(at),
    );
    assert.deepEqual(payloads(await read(diego, 'app-2')), ['other']);
    assert.deepEqual(await read(diego, 'nobody'), []);
  });

  test('envelope_types filters (repeatable); the window is [start_time, end_time)', async () => {
    assert.deepEqual(payloads(await read(diego, 'app-1', '?envelope_types=LOG')), ['line 0', 'line 1', 'line 2', 'line 3', 'line 4']);
    const gauges = await read(diego, 'app-1', '?envelope_types=GAUGE');
    assert.equal(gauges.length, 5);
    assert.deepEqual(gauges[2]?.gauge?.metrics.memory, { unit: 'bytes', value: 2000 });
    assert.equal((await read(diego, 'app-1', '?envelope_types=LOG&envelope_types=GAUGE')).length, 10);
    assert.equal((await read(diego, 'app-1', '?envelope_types=COUNTER')).length, 0);

    const window = await read(diego, 'app-1', `?start_time=${at(10)}&end_time=${at(30)}`);
    assert.deepEqual(window.map((envelope) => envelope.timestamp), [10, 15, 20, 25].map(at), 'start inclusive, end exclusive');
    assert.equal((await read(diego, 'app-1', `?start_time=${at(46)}`)).length, 0);
  });

  test('limit (default 100, at most 1000) and descending order', async () => {
    assert.deepEqual(payloads(await read(diego, 'app-1', '?envelope_types=LOG&limit=2')), ['line 0', 'line 1']);
    assert.deepEqual(payloads(await read(diego, 'app-1', '?envelope_types=LOG&limit=2&descending=true')), ['line 4', 'line 3']);
    const newestFirst = await read(diego, 'app-1', `?descending=true&end_time=${at(20)}`);
    assert.deepEqual(newestFirst.map((envelope) => envelope.timestamp), [15, 10, 5, 0].map(at));
    assert.equal(payloads(await read(diego, 'app-1', '?envelope_types=LOG&descending=true&limit=1'))[0], 'line 4');

    const tooMany = await fetch(`${diego.url}/api/v1/read/app-1?limit=1001`);
    assert.equal(tooMany.status, 400);
    assert.deepEqual(await tooMany.json(), { code: 3, message: 'Limit (1001) must be 1000 or less', details: [] });
    assert.equal((await fetch(`${diego.url}/api/v1/read/app-1?envelope_types=BOGUS`)).status, 400);
    assert.equal((await fetch(`${diego.url}/api/v1/read/app-1?start_time=yesterday`)).status, 400);
    assert.equal((await fetch(`${diego.url}/api/v1/read/app-1`, { method: 'POST' })).status, 405);
  });

  test('meta lists the sources with counts and the oldest and newest timestamps', async () => {
    const response = await fetch(`${diego.url}/api/v1/meta`);
    const { meta } = (await response.json()) as { meta: Record<string, { count: string; oldestTimestamp: string; newestTimestamp: string }> };
    assert.equal(meta['app-1']?.count, '10');
    assert.equal(meta['app-1']?.oldestTimestamp, at(0));
    assert.equal(meta['app-1']?.newestTimestamp, at(45));
    assert.equal(meta['app-2']?.count, '1');
  });

  test('the BBS routes still answer on the same port', async () => {
    const response = await fetch(`${diego.url}/v1/ping`, { method: 'POST' });
    assert.equal(response.status, 200);
    assert.equal((await fetch(`${diego.url}/api/v1/other`)).status, 404);
  });
});

describe('log-cache feed', () => {
  test('appendLog and appendContainerMetrics stamp now; TPS reads the latest cpu, memory and disk per index', async () => {
    const diego = await startDiego(newDataDir());
    try {
      diego.appendLog('app-guid', '1', 'hello from 1\n', 'OUT', { source_type: 'APP/PROC/WEB' });
      diego.appendLog('app-guid', '0', Buffer.from('oops'), 'ERR');
      for (const [index, cpu] of [
        [0, 1.5],
        [1, 7.25],
        [0, 3.5],
      ] as const) {
        diego.appendContainerMetrics({
          sourceId: 'app-guid',
          instanceId: String(index),
          cpuPercentage: cpu,
          memoryBytes: 64 * 1024 * 1024,
          diskBytes: 10 * 1024 * 1024,
          memoryQuotaBytes: 256 * 1024 * 1024,
          diskQuotaBytes: 1024 * 1024 * 1024,
          tags: { process_id: 'proc-web', app_id: 'app-guid' },
        });
      }
      // Another process of the same app: filtered out by process_id.
      diego.appendContainerMetrics({ sourceId: 'app-guid', instanceId: '0', cpuPercentage: 99, memoryBytes: 1, diskBytes: 1, tags: { process_id: 'proc-worker' } });

      const logs = await read(diego, 'app-guid', '?envelope_types=LOG');
      assert.deepEqual(payloads(logs), ['hello from 1\n', 'oops']);
      assert.deepEqual(logs.map((envelope) => envelope.log?.type), ['OUT', 'ERR']);
      const nowNs = BigInt(Date.now()) * 1_000_000n;
      assert.ok(nowNs - BigInt(logs[0]!.timestamp) < 60_000_000_000n, 'stamped with the current time');

      const gauge = (await read(diego, 'app-guid', '?envelope_types=GAUGE&limit=1'))[0]!;
      assert.deepEqual(Object.keys(gauge.gauge!.metrics).sort(), ['cpu', 'disk', 'disk_quota', 'memory', 'memory_quota']);
      assert.deepEqual(gauge.gauge!.metrics.cpu, { unit: 'percentage', value: 1.5 });

      const client = createLogCacheClient({ url: diego.url });
      const stats = await client.containerMetrics('app-guid', 'proc-web');
      assert.deepEqual(stats, [
        { index: 0, cpuPercentage: 3.5, memoryBytes: 64n * 1024n * 1024n, diskBytes: 10n * 1024n * 1024n },
        { index: 1, cpuPercentage: 7.25, memoryBytes: 64n * 1024n * 1024n, diskBytes: 10n * 1024n * 1024n },
      ]);
      assert.equal((await client.read('app-guid', { envelopeTypes: ['LOG'], descending: true, limit: 1 })).length, 1);
    } finally {
      await diego.close();
    }
  });

  test('each source keeps its newest envelopes only; out-of-order appends are read in time order', async () => {
    const diego = await startDiego(newDataDir(), { logCache: { maxEnvelopesPerSource: 10 } });
    try {
      for (let s = 0; s < 25; s++) {
        diego.appendEnvelope({ source_id: 'busy', timestamp: at(s), tags: {}, log: { payload: Buffer.from(`n${s}`).toString('base64'), type: 'OUT' } });
      }
      assert.deepEqual(payloads(await read(diego, 'busy')), Array.from({ length: 10 }, (_, i) => `n${15 + i}`));

      for (const s of [30, 10, 20]) {
        diego.appendEnvelope({ source_id: 'late', timestamp: at(s), tags: {}, log: { payload: Buffer.from(`t${s}`).toString('base64'), type: 'OUT' } });
      }
      assert.deepEqual(payloads(await read(diego, 'late')), ['t10', 't20', 't30']);
    } finally {
      await diego.close();
    }
  });

  test('log lines survive a restart with the same data directory; metrics do not', async () => {
    const dataDir = newDataDir();
    const first = await startDiego(dataDir, { logCache: { maxPersistedLogsPerSource: 3 } });
    for (let s = 0; s < 5; s++) first.appendLog('kept', '0', `line ${s}`);
    first.appendContainerMetrics({ sourceId: 'kept', instanceId: '0', cpuPercentage: 1, memoryBytes: 1, diskBytes: 1 });
    await first.close();

    const second = await startDiego(dataDir, { logCache: { maxPersistedLogsPerSource: 3 } });
    try {
      assert.deepEqual(payloads(await read(second, 'kept')), ['line 2', 'line 3', 'line 4'], 'the newest lines, bounded on disk');
      assert.equal((await read(second, 'kept', '?envelope_types=GAUGE')).length, 0);
    } finally {
      await second.close();
    }
  });
});
