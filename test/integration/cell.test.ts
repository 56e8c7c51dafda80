// The embedded cell against real sandboxes: work desired through the BBS client is placed on the
// cell by the embedded Diego, runs in bubblewrap containers networked by pasta, and every change
// comes back over the BBS cell routes — tasks to their completion callback, app instances to
// RUNNING with an address that answers, crashes restarted by the BBS's policy, scale-down by a
// graceful stop, logs and container metrics in the log-cache read API, and a drained shutdown
// that hands instances over to another cell or, with none left, stops them at its deadline.
// Every server is on 127.0.0.1; every interval is milliseconds.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createBbsClient, type BbsClient } from '../../clients/bbs/index.js';
import type { LrpInstanceEvent } from '../../clients/bbs/sse.js';
import { createLogCacheClient } from '../../clients/logcache/client.js';
import { Action } from '../../gen/diego/bbs/v1/actions.js';
import { ActualLRP_Presence, type ActualLRP } from '../../gen/diego/bbs/v1/actual_lrp.js';
import { MetricTagValue_DynamicValue } from '../../gen/diego/bbs/v1/container.js';
import { DesiredLRP } from '../../gen/diego/bbs/v1/desired_lrp.js';
import { Task, Task_State, TaskDefinition } from '../../gen/diego/bbs/v1/task.js';
import { startEmbeddedCell, type EmbeddedCell, type EmbeddedCellOptions } from '../../embedded/diego/cell/index.js';
import { ActualLrpState, startEmbeddedDiego, TASK_CANCELLED_REASON, type EmbeddedDiego, type LogEnvelope } from '../../embedded/diego/index.js';
import { processTree } from '../../embedded/diego/executor/proc.js';
import { silentLogger } from '../../lib/log.js';

const logger = silentLogger();
const token = `celltest${process.pid}`;
const root = mkdtempSync(join(tmpdir(), `${token}-`));

// ---------------------------------------------------------------- the test HTTP server

/** The app's script, served as an archive a Download action unpacks. */
const APP_SCRIPT = `
const http = require('http');
const index = process.env.CF_INSTANCE_INDEX;
const name = process.argv[3];
let ready = true;
const server = http.createServer((req, res) => {
  if (req.url === '/ready') { res.statusCode = ready ? 200 : 503; return res.end(); }
  if (req.url === '/unready') { ready = false; return res.end(); }
  res.end('hello from the cell, instance ' + index);
});
server.listen(Number(process.env.PORT), () => console.log('listening on ' + process.env.PORT));
console.error('a line on stderr');
process.on('SIGTERM', () => {
  console.log('got SIGTERM');
  // The marker: the container's files go with it, so the handler tells the test server.
  const req = http.request({ host: '127.0.0.1', port: Number(process.env.MARKER_PORT), path: '/sigterm/' + name + '/' + index, method: 'POST' }, (res) => {
    res.resume();
    res.on('end', () => process.exit(0));
  });
  req.on('error', () => process.exit(1));
  req.end(process.argv[2]);
});
`;

const callbacks: { path: string; body: string }[] = [];
/** SIGTERM markers: which app (the LRP's name in the test), which index. */
const sigterms: { name: string; index: string; body: string }[] = [];
const served = new Map<string, Buffer>();
let server: Server;
let serverPort = 0;
const url = (path: string) => `http://127.0.0.1:${serverPort}${path}`;

function handle(req: IncomingMessage, res: ServerResponse): void {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    if (req.method === 'POST' && path.startsWith('/callback/')) callbacks.push({ path, body });
    else if (req.method === 'POST' && path.startsWith('/sigterm/')) {
      const [name = '', index = ''] = path.slice('/sigterm/'.length).split('/');
      sigterms.push({ name, index, body });
    }
    else {
      const file = served.get(path);
      if (file === undefined) return void res.writeHead(404).end();
      return void res.writeHead(200).end(file);
    }
    res.writeHead(200).end();
  });
}

function archive(name: string, files: Record<string, string>): Buffer {
  const dir = join(root, 'files', name);
  mkdirSync(dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
  const out = join(root, 'files', `${name}.tgz`);
  execFileSync('tar', ['-czf', out, '-C', dir, '.']);
  return readFileSync(out);
}

// ---------------------------------------------------------------- helpers

async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const run = (path: string, args: string[], extra: Record<string, unknown> = {}): Action =>
  Action.fromPartial({ runAction: { path, args, user: 'vcap', ...extra } });
const serial = (...actions: Action[]) => Action.fromPartial({ serialAction: { actions } });

/** The test's app; `name` tells its SIGTERM markers apart. */
function appLrp(processGuid: string, instances: number, name = 'app', extra: Partial<DesiredLRP> = {}): DesiredLRP {
  const logGuid = `log-${processGuid}`;
  return DesiredLRP.fromPartial({
    processGuid,
    domain: 'cell-test',
    rootFs: 'preloaded:cflinuxfs4',
    instances,
    memoryMb: 128,
    diskMb: 256,
    ports: [8080],
    logGuid,
    metricsGuid: logGuid,
    logSource: 'APP/PROC/WEB',
    metricTags: {
      source_id: { static: logGuid },
      process_id: { static: processGuid },
      instance_id: { dynamic: MetricTagValue_DynamicValue.DYNAMIC_VALUE_INDEX },
    },
    setup: Action.fromPartial({ downloadAction: { from: url('/app.tgz'), to: '/home/vcap/app', user: 'vcap', cacheKey: `app-${token}` } }),
    action: run('node', ['/home/vcap/app/app.js', token, name], {
      env: [
        { name: 'PORT', value: '8080' },
        { name: 'MARKER_PORT', value: String(serverPort) },
      ],
    }),
    startTimeoutMs: '15000',
    checkDefinition: { checks: [{ tcpCheck: { port: 8080, connectTimeoutMs: '500', intervalMs: '100' } }], logSource: 'HEALTH', readinessChecks: [] },
    ...extra,
  });
}

const markers = (name: string, index: string) => sigterms.filter((each) => each.name === name && each.index === index);

/** Log lines the embedded Diego's log-cache read API serves for a source id. */
async function logLines(diego: EmbeddedDiego, sourceId: string): Promise<{ text: string; type: string; instance: string; tags: Record<string, string> }[]> {
  const response = await fetch(`${diego.url}/api/v1/read/${sourceId}?envelope_types=LOG&limit=1000`);
  assert.equal(response.status, 200);
  const body = (await response.json()) as { envelopes: { batch: LogEnvelope[] } };
  return body.envelopes.batch.map((envelope) => ({
    text: Buffer.from(envelope.log!.payload, 'base64').toString('utf8'),
    type: envelope.log!.type,
    instance: envelope.instance_id,
    tags: envelope.tags,
  }));
}

/** Host pids of sandbox plumbing (bwrap, pasta) below this process. */
function sandboxProcesses(): number[] {
  return processTree(process.pid).filter((pid) => {
    try {
      return ['bwrap', 'pasta', 'passt'].includes(readFileSync(`/proc/${pid}/comm`, 'utf8').trim());
    } catch {
      return false;
    }
  });
}

/** The app's node process for one index, found through /proc by the token in its arguments. */
function appProcess(index: number): number | undefined {
  for (const pid of processTree(process.pid)) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'node') continue;
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (!args.includes(token)) continue;
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      if (env.includes(`CF_INSTANCE_INDEX=${index}`)) return pid;
    } catch {
      // Gone while looked at.
    }
  }
  return undefined;
}

// ---------------------------------------------------------------- the Diego and its cell

let diego: EmbeddedDiego;
let bbs: BbsClient;
let cell: EmbeddedCell;

/** evacuationTimeoutMs: long enough for a replacement to start elsewhere, or short for a last cell. */
const cellOptions = (cellId: string, evacuationTimeoutMs = 1_000): EmbeddedCellOptions => ({
  diego,
  cellId,
  dataDir: join(root, cellId),
  logger,
  capacity: { memoryMb: 4096, diskMb: 16_384, containers: 16 },
  hostServicePorts: [serverPort],
  executorOptions: {
    stopGraceMs: 2_000,
    killWaitMs: 2_000,
    metricsIntervalMs: 100,
    checkStartIntervalMs: 50,
    monitorStartIntervalMs: 50,
  },
  timing: { evacuationTimeoutMs, evacuationPollIntervalMs: 50, reportRetryDelayMs: 20 },
});

before(async () => {
  served.set('/app.tgz', archive('app', { 'app.js': APP_SCRIPT }));
  server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  serverPort = (server.address() as AddressInfo).port;
  diego = await startEmbeddedDiego({
    dataDir: join(root, 'diego'),
    logger,
    timing: {
      convergenceIntervalMs: 500,
      taskKickIntervalMs: 500,
      staleUnclaimedMs: 500,
      cellTtlMs: 3_000,
      cellCheckIntervalMs: 100,
      callbackTimeoutMs: 2_000,
      reservationTtlMs: 2_000,
    },
    logCache: { flushIntervalMs: 20 },
  });
  bbs = createBbsClient({ url: diego.url, logger });
  cell = await startEmbeddedCell(cellOptions(`cell-a-${token}`, 15_000));
});

after(async () => {
  await cell?.close({ evacuate: false });
  bbs?.close();
  await diego?.close(100);
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  rmSync(root, { recursive: true, force: true });
});

describe('tasks', () => {
  test('a desired task is placed on the cell, runs, completes, and its callback carries the result file', async () => {
    const taskGuid = `task-${token}`;
    await bbs.desireTask(
      taskGuid,
      'cell-test',
      TaskDefinition.fromPartial({
        rootFs: 'preloaded:cflinuxfs4',
        memoryMb: 64,
        diskMb: 64,
        logGuid: `log-${taskGuid}`,
        logSource: 'STG',
        metricTags: { source_id: { static: `log-${taskGuid}` } },
        action: serial(
          run('/bin/sh', ['-c', 'echo staging output; echo oops >&2']),
          run('/bin/sh', ['-c', `printf 'the result of ${token}' > /tmp/result.json`]),
        ),
        resultFile: '/tmp/result.json',
        completionCallbackUrl: url(`/callback/${taskGuid}`),
      }),
    );

    const callback = await waitFor('the completion callback', () => callbacks.find((each) => each.path === `/callback/${taskGuid}`));
    const body = JSON.parse(callback.body) as { task_guid: string; failed: boolean; failure_reason: string; result: string };
    assert.equal(body.task_guid, taskGuid);
    assert.equal(body.failed, false, body.failure_reason);
    assert.equal(body.result, `the result of ${token}`);

    const lines = await waitFor('the staging lines', async () => {
      const found = await logLines(diego, `log-${taskGuid}`);
      return found.some((line) => line.text === 'oops') ? found : undefined;
    });
    const output = lines.find((line) => line.text === 'staging output');
    assert.deepEqual(
      { type: output?.type, instance: output?.instance, source: output?.tags.source_type, sourceId: output?.tags.source_id },
      { type: 'OUT', instance: '0', source: 'STG', sourceId: `log-${taskGuid}` },
    );
    assert.equal(lines.find((line) => line.text === 'oops')?.type, 'ERR');
    assert.deepEqual(cell.snapshot().tasks, [], 'the task container is gone');
  });

  test('a cancelled task is stopped on the cell; the BBS has it completed as cancelled', async () => {
    const taskGuid = `cancel-${token}`;
    await bbs.desireTask(
      taskGuid,
      'cell-test',
      TaskDefinition.fromPartial({
        rootFs: 'preloaded:cflinuxfs4',
        memoryMb: 64,
        diskMb: 64,
        logGuid: `log-${taskGuid}`,
        action: run('/bin/sh', ['-c', 'echo started; exec sleep 60']),
      }),
    );
    await waitFor('the task running on the cell', async () => (await bbs.taskByGuid(taskGuid)).state === Task_State.STATE_RUNNING && cell.snapshot().tasks.includes(taskGuid));
    await waitFor('the task started', async () => (await logLines(diego, `log-${taskGuid}`)).some((line) => line.text === 'started'));
    await bbs.cancelTask(taskGuid);
    await waitFor('the task container gone', () => !cell.snapshot().tasks.includes(taskGuid));
    const task = await bbs.taskByGuid(taskGuid);
    assert.equal(task.state, Task_State.STATE_COMPLETED);
    assert.equal(task.failed, true);
    assert.equal(task.failureReason, TASK_CANCELLED_REASON);
  });

  test('work the cell has no room for comes back refused', async () => {
    const tooBig = Task.fromPartial({
      taskGuid: `too-big-${token}`,
      taskDefinition: { rootFs: 'preloaded:cflinuxfs4', memoryMb: 1_000_000, diskMb: 64, action: run('/bin/true', []) },
    });
    const refused = await cell.rep.perform({ lrps: [], tasks: [tooBig] });
    assert.deepEqual(refused.tasks.map((task) => task.taskGuid), [tooBig.taskGuid]);
  });
});

describe('app instances', () => {
  const processGuid = `app-${token}`;
  const events: LrpInstanceEvent[] = [];
  const stopEvents = new AbortController();

  const ordinary = async (index: number): Promise<ActualLRP | undefined> =>
    (await bbs.actualLrps({ processGuid, index })).find((lrp) => lrp.presence === ActualLRP_Presence.PRESENCE_ORDINARY);
  const runningAt = (index: number, notInstance = '') =>
    waitFor(`instance ${index} RUNNING`, async () => {
      const lrp = await ordinary(index);
      return lrp?.state === ActualLrpState.RUNNING && lrp.actualLrpInstanceKey?.instanceGuid !== notInstance ? lrp : undefined;
    });

  before(async () => {
    const stream = bbs.watchInstanceEvents({ signal: stopEvents.signal });
    void (async () => {
      for await (const event of stream) if ('event' in event) events.push(event as LrpInstanceEvent);
    })().catch(() => undefined);
  });
  after(() => stopEvents.abort());

  test('an app instance runs with net info and answers on its host port; its logs and container metrics reach log-cache', async () => {
    await bbs.desireLrp(appLrp(processGuid, 2));
    for (const index of [0, 1]) {
      const lrp = await runningAt(index);
      assert.equal(lrp.actualLrpInstanceKey?.cellId, cell.cellId);
      assert.equal(lrp.routable, true);
      const net = lrp.actualLrpNetInfo!;
      assert.equal(net.address, '127.0.0.1');
      assert.equal(net.ports.length, 1);
      assert.equal(net.ports[0]!.containerPort, 8080);
      assert.equal(await (await fetch(`http://127.0.0.1:${net.ports[0]!.hostPort}/`)).text(), `hello from the cell, instance ${index}`);
      assert.deepEqual(lrp.metricTags, { source_id: `log-${processGuid}`, process_id: processGuid, instance_id: String(index) });
    }

    const lines = await waitFor('app lines in log-cache', async () => {
      const found = await logLines(diego, `log-${processGuid}`);
      return found.some((line) => line.text === 'listening on 8080' && line.instance === '1') ? found : undefined;
    });
    const listening = lines.find((line) => line.text === 'listening on 8080')!;
    assert.equal(listening.type, 'OUT');
    assert.equal(listening.tags.source_type, 'APP/PROC/WEB');
    assert.equal(listening.tags.process_id, processGuid);
    assert.equal(lines.find((line) => line.text === 'a line on stderr')?.type, 'ERR');
    assert.ok(lines.some((line) => line.tags.source_type === 'CELL' && /^Cell .* successfully created container for instance /.test(line.text)));
    assert.ok(lines.some((line) => line.tags.source_type === 'CELL' && line.text === 'Container became healthy'));

    // As TPS reads them: the latest gauges per index of this process.
    const stats = await waitFor('container metrics of both instances', async () => {
      const metrics = await createLogCacheClient({ url: diego.url }).containerMetrics(`log-${processGuid}`, processGuid);
      return metrics.length === 2 && metrics.every((each) => each.memoryBytes > 0n) ? metrics : undefined;
    });
    assert.deepEqual(stats.map((each) => each.index), [0, 1]);
    assert.ok(stats.every((each) => each.diskBytes > 0n && each.cpuPercentage >= 0));
  });

  test('a killed app process crashes the instance; the BBS restarts it and it runs again', async () => {
    const before = (await ordinary(0))!;
    const pid = await waitFor('the app process of instance 0', () => appProcess(0));
    process.kill(pid, 'SIGKILL');

    const crashed = await waitFor('the crash event', () =>
      events.find((each) => each.type === 'actual_lrp_crashed' && each.event.actualLrpKey?.processGuid === processGuid),
    );
    // Whichever notices first names the crash: the app's exit, or its liveness check failing.
    assert.match(crashed.type === 'actual_lrp_crashed' ? crashed.event.crashReason : '', /Exited with status 137$|^Instance became unhealthy: /);
    const again = await runningAt(0, before.actualLrpInstanceKey!.instanceGuid);
    assert.equal(again.crashCount, 1);
    assert.equal(again.actualLrpInstanceKey?.cellId, cell.cellId);
    const hostPort = again.actualLrpNetInfo!.ports[0]!.hostPort;
    assert.equal(await (await fetch(`http://127.0.0.1:${hostPort}/`)).text(), 'hello from the cell, instance 0');
  });

  test('scaling down stops the surplus instance gracefully: its SIGTERM handler runs, then its record goes', async () => {
    await bbs.updateDesiredLrp(processGuid, { instances: 1, metricTags: {} });
    const marker = await waitFor('the SIGTERM marker of instance 1', () => markers('app', '1')[0]);
    assert.equal(marker.body, token);
    await waitFor('instance 1 removed', async () => (await bbs.actualLrps({ processGuid, index: 1 })).length === 0);
    await waitFor('its container gone', () => !cell.snapshot().instances.some((each) => each.index === 1));
    assert.equal((await ordinary(0))?.state, ActualLrpState.RUNNING, 'instance 0 runs on');
    assert.ok((await logLines(diego, `log-${processGuid}`)).some((line) => line.text === 'got SIGTERM' && line.instance === '1'));
  });

  test('readiness checks decide routability: not routable until they pass, and no longer once they fail', async () => {
    const readyGuid = `ready-${token}`;
    const readiness = [{ httpCheck: { port: 8080, path: '/ready', requestTimeoutMs: '500', intervalMs: '50' } }];
    await bbs.desireLrp(
      appLrp(readyGuid, 1, 'ready', {
        checkDefinition: { checks: [{ tcpCheck: { port: 8080, connectTimeoutMs: '500', intervalMs: '100' } }], logSource: 'HEALTH', readinessChecks: readiness },
      }),
    );
    const routable = (want: boolean) =>
      waitFor(`routable ${want}`, async () => {
        const [lrp] = await bbs.actualLrps({ processGuid: readyGuid, index: 0 });
        return lrp?.state === ActualLrpState.RUNNING && lrp.routable === want ? lrp : undefined;
      });
    const lrp = await routable(true);
    const seen = events.filter((each) => each.type === 'actual_lrp_instance_changed' && each.event.actualLrpKey?.processGuid === readyGuid);
    assert.ok(
      seen.some((each) => each.type === 'actual_lrp_instance_changed' && each.event.after?.state === ActualLrpState.RUNNING && each.event.after.routable === false),
      'it ran unroutable before its readiness checks first passed',
    );
    await fetch(`http://127.0.0.1:${lrp.actualLrpNetInfo!.ports[0]!.hostPort}/unready`);
    await routable(false);

    await bbs.removeDesiredLrp(readyGuid);
    await waitFor('its SIGTERM marker', () => markers('ready', '0')[0]);
    await waitFor('its record removed', async () => (await bbs.actualLrps({ processGuid: readyGuid })).length === 0);
    await waitFor('its container gone', () => !cell.snapshot().instances.some((each) => each.processGuid === readyGuid));
  });

  test('a draining cell hands its instance over to another cell; the last cell, with nowhere to hand over, stops it at its deadline', async () => {
    const cellB = await startEmbeddedCell(cellOptions(`cell-b-${token}`));
    try {
      const held = (await ordinary(0))!;
      assert.equal(held.actualLrpInstanceKey?.cellId, cell.cellId);
      const drained = await cell.close({ evacuate: true });
      assert.deepEqual(drained, { handedOver: 1, stopped: 0, abandonedTasks: 0 });
      const replacement = await runningAt(0, held.actualLrpInstanceKey!.instanceGuid);
      assert.equal(replacement.actualLrpInstanceKey?.cellId, cellB.cellId);
      assert.equal(markers('app', '0').length, 1, 'the evacuated instance was stopped gracefully');
      assert.deepEqual(await bbs.actualLrps({ cellId: cell.cellId }), [], 'nothing is left on the drained cell');
      assert.ok(!(await bbs.cells()).some((presence) => presence.cellId === cell.cellId), 'the drained cell is gone');
      assert.equal(await (await fetch(`http://127.0.0.1:${replacement.actualLrpNetInfo!.ports[0]!.hostPort}/`)).text(), 'hello from the cell, instance 0');

      const startedAt = Date.now();
      const last = await cellB.close({ evacuate: true });
      assert.deepEqual(last, { handedOver: 0, stopped: 1, abandonedTasks: 0 });
      assert.ok(Date.now() - startedAt < 10_000, 'the wait is bounded');
      assert.equal(markers('app', '0').length, 2);
      const records = await bbs.actualLrps({ processGuid });
      assert.deepEqual(
        records.map((lrp) => ({ presence: lrp.presence, state: lrp.state, cell: lrp.actualLrpInstanceKey?.cellId })),
        [{ presence: ActualLRP_Presence.PRESENCE_ORDINARY, state: ActualLrpState.UNCLAIMED, cell: '' }],
        'no evacuating copy is left; the instance waits for a cell',
      );
    } finally {
      await cellB.close({ evacuate: false });
    }
  });

  test('a cell closed without draining stops its instances and removes their records; nothing of the cells is left behind', async () => {
    const cellC = await startEmbeddedCell(cellOptions(`cell-c-${token}`));
    const lrp = await runningAt(0);
    assert.equal(lrp.actualLrpInstanceKey?.cellId, cellC.cellId);
    const closed = await cellC.close({ evacuate: false });
    assert.deepEqual(closed, { handedOver: 0, stopped: 1, abandonedTasks: 0 });
    assert.deepEqual(await bbs.actualLrps({ cellId: cellC.cellId }), []);
    assert.equal(markers('app', '0').length, 3);

    assert.deepEqual(sandboxProcesses(), [], 'no bwrap or pasta process is left');
    for (const cellId of [cell.cellId, `cell-b-${token}`, cellC.cellId]) {
      const containers = join(root, cellId, 'containers');
      assert.deepEqual(existsSync(containers) ? readdirSync(containers) : [], [], `no container directory is left for ${cellId}`);
    }
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
    assert.ok(!mounts.includes(root), 'no mount under the data directory');
  });
});
