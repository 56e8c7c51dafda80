// bench/nsync's Cloud Controller: the desired state read from a seeded embedded Diego store, so
// both start in sync; `dirty` then makes 1% stale (new etag), 1% missing (new apps CC has and
// Diego not) and 1% extra (apps Diego has and CC not). Serves the two bulk endpoints only, from
// a sorted array (the test double sorts on every page, too slow for 250k apps).
// Usage: cc.ts <dataDir> clean|dirty. Prints {"url": ...}.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { openDiegoDatabase } from '../../embedded/diego/index.js';
import { DesiredLRPSchedulingInfo } from '../../gen/diego/bbs/v1/desired_lrp.js';

const [dataDir, mode] = process.argv.slice(2);
const db = openDiegoDatabase(dataDir!);
const rows = db.prepare('SELECT process_guid, scheduling_info FROM desired_lrps ORDER BY process_guid').all() as { process_guid: string; scheduling_info: Buffer }[];
db.close();
let apps = rows.map((row) => ({ guid: row.process_guid, etag: DesiredLRPSchedulingInfo.decode(row.scheduling_info).annotation }));
if (mode === 'dirty') {
  const onePercent = Math.max(1, Math.floor(apps.length / 100));
  apps = apps.slice(onePercent); // extra: Diego keeps these, CC no longer has them
  for (let i = 0; i < onePercent; i++) apps[i * 3]!.etag = `${apps[i * 3]!.etag}-changed`; // stale
  for (let i = 0; i < onePercent; i++) apps.push({ guid: `${randomUUID()}-${randomUUID()}`, etag: 'new' }); // missing
  apps.sort((a, b) => (a.guid < b.guid ? -1 : 1));
}
const byGuid = new Map(apps.map((a) => [a.guid, a]));

function desiredApp(guid: string, etag: string): unknown {
  return {
    process_guid: guid,
    droplet_uri: `http://127.0.0.1:9022/staging/droplets/${guid.slice(0, 36)}/download`,
    stack: 'cflinuxfs4',
    start_command: 'node server.js',
    execution_metadata: '{"start_command":"node server.js"}',
    environment: [{ name: 'VCAP_APPLICATION', value: '{"application_name":"bench"}' }],
    memory_mb: 1024,
    disk_mb: 1024,
    file_descriptors: 16384,
    num_instances: 1,
    routes: [`${guid.slice(0, 8)}.apps.example.com`],
    allow_ssh: true,
    log_guid: guid.slice(0, 36),
    health_check_type: 'port',
    health_check_timeout_in_seconds: 60,
    etag,
  };
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://cc');
  if (req.method === 'GET' && url.pathname === '/internal/bulk/apps') {
    const batch = Number(url.searchParams.get('batch_size') ?? 500);
    const offset = (JSON.parse(url.searchParams.get('token') ?? '{}') as { id?: number }).id ?? 0;
    const page = apps.slice(offset, offset + batch).map((a) => ({ process_guid: a.guid, etag: a.etag }));
    res.end(JSON.stringify({ fingerprints: page, token: { id: offset + page.length } }));
    return;
  }
  if (req.method === 'POST' && url.pathname === '/internal/bulk/apps') {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const guids = JSON.parse(Buffer.concat(chunks).toString()) as string[];
      res.end(JSON.stringify(guids.map((g) => byGuid.get(g)).filter((a) => a !== undefined).map((a) => desiredApp(a.guid, a.etag))));
    });
    return;
  }
  res.writeHead(404).end();
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, apps: apps.length })}\n`));
process.on('SIGINT', () => process.exit(0));
