// bench/stager: staging requests to 202.
//
// Process layout: one server process (gateway + Stager in-process + embedded Diego, no cell —
// the all-in-one's staging path), the load generator in this process; 127.0.0.1; 2 cores.
// Baseline in the same run: the same gateway with a Stager that answers at once (the bare
// gateway round trip).
// Load model: a steady 100 PUT /v1/staging/:guid requests in flight for 10 s (BENCH_SECONDS),
// each with a fresh staging guid, after a 1 s warm-up. Data shape: a buildpack staging request
// as CC sends it (~1.3 KB: env, egress rule, two buildpacks, artifacts cache).
// Anchor: the real BBS DesireTask averaged ~200 ms under 100 parallel creates. Goal: p99 to 202
// under 50 ms.
import { Agent, request } from 'node:http';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { startChild, stopChildren } from '../lib/child.js';
import { printBenchResult } from '../lib/result.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const IN_FLIGHT = 100;
const agent = new Agent({ keepAlive: true, maxSockets: IN_FLIGHT });

const body = JSON.stringify({
  app_id: 'a4b9a5b8-6bd0-4c2e-9a7b-0c5f3e2d1a00',
  file_descriptors: 16384,
  memory_mb: 1024,
  disk_mb: 4096,
  environment: [
    { name: 'VCAP_APPLICATION', value: '{"application_name":"bench","limits":{"mem":1024}}' },
    { name: 'VCAP_SERVICES', value: '{}' },
    { name: 'MEMORY_LIMIT', value: '1024m' },
  ],
  egress_rules: [{ protocol: 'all', destinations: ['0.0.0.0-9.255.255.255', '11.0.0.0-169.253.255.255'], log: false }],
  timeout: 900,
  log_guid: 'a4b9a5b8-6bd0-4c2e-9a7b-0c5f3e2d1a00',
  lifecycle: 'buildpack',
  lifecycle_data: {
    app_bits_download_uri: 'http://127.0.0.1:9022/staging/packages/a4b9a5b8-6bd0-4c2e-9a7b-0c5f3e2d1a00',
    build_artifacts_cache_download_uri: 'http://127.0.0.1:9022/staging/buildpack_cache/a4b9a5b8/download',
    build_artifacts_cache_upload_uri: 'http://127.0.0.1:9022/staging/buildpack_cache/a4b9a5b8/upload',
    buildpacks: [
      { name: 'nodejs', key: 'nodejs-buildpack-key', url: 'http://127.0.0.1:8080/v1/static/buildpacks/nodejs_buildpack.tgz', skip_detect: false },
      { name: 'staticfile', key: 'staticfile-buildpack-key', url: 'http://127.0.0.1:8080/v1/static/buildpacks/staticfile_buildpack.tgz', skip_detect: false },
    ],
    droplet_upload_uri: 'http://127.0.0.1:9022/staging/droplets/a4b9a5b8-6bd0-4c2e-9a7b-0c5f3e2d1a00/upload',
    stack: 'cflinuxfs4',
  },
});

function stage(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(`${url}/v1/staging/${randomUUID()}`, { method: 'PUT', agent, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

async function steady(url: string, seconds: number): Promise<{ latencies: number[]; errors: number; seconds: number }> {
  const latencies: number[] = [];
  let errors = 0;
  const until = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (performance.now() < until) {
        const t = performance.now();
        const status = await stage(url);
        latencies.push(performance.now() - t);
        if (status !== 202) errors++;
      }
    }),
  );
  return { latencies: latencies.sort((a, b) => a - b), errors, seconds: (performance.now() - started) / 1000 };
}

const q = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;

try {
  const script = fileURLToPath(new URL('./server.ts', import.meta.url));
  const results: Record<string, Awaited<ReturnType<typeof steady>>> = {};
  for (const mode of ['noop', 'stager']) {
    const { info, child } = await startChild<{ url: string }>(script, [mode]);
    await steady(info.url, 1);
    results[mode] = await steady(info.url, SECONDS);
    child.kill('SIGINT');
  }
  console.log(`bench/stager: ${IN_FLIGHT} staging requests in flight for ${SECONDS} s, PUT /v1/staging/:guid → 202`);
  for (const [mode, r] of Object.entries(results)) {
    const label = mode === 'noop' ? 'bare gateway (answers at once)' : 'stager → embedded Diego';
    console.log(`${label.padEnd(32)} ${(r.latencies.length / r.seconds).toFixed(0).padStart(6)} req/s   p50 ${q(r.latencies, 0.5).toFixed(1).padStart(6)} ms   p99 ${q(r.latencies, 0.99).toFixed(1).padStart(6)} ms   errors ${r.errors}`);
  }
  const stager = results.stager!;
  console.log(`stager p99 ${q(stager.latencies, 0.99).toFixed(1)} ms (goal < 50 ms; anchor: the real BBS DesireTask ~200 ms average under 100 parallel creates)`);
  const noop = results.noop!;
  const p99 = q(stager.latencies, 0.99);
  printBenchResult({
    name: 'stager',
    sizes: `${IN_FLIGHT} in flight for ${SECONDS} s`,
    rows: [
      { figure: 'PUT /v1/staging/:guid → 202, p99', value: p99, unit: 'ms', baseline: { name: 'bare gateway p99', value: q(noop.latencies, 0.99) }, ratio: p99 / q(noop.latencies, 0.99), goal: '< 50 ms', met: p99 < 50 },
      { figure: 'PUT /v1/staging/:guid → 202, p50', value: q(stager.latencies, 0.5), unit: 'ms', baseline: { name: 'bare gateway p50', value: q(noop.latencies, 0.5) } },
      { figure: 'staging requests, throughput', value: stager.latencies.length / stager.seconds, unit: 'req/s', baseline: { name: 'bare gateway', value: noop.latencies.length / noop.seconds }, ratio: stager.latencies.length / stager.seconds / (noop.latencies.length / noop.seconds) },
    ],
    notes: [`anchor: the real BBS DesireTask averaged ~200 ms under 100 parallel creates`, ...(stager.errors > 0 ? [`${stager.errors} requests did not answer 202`] : [])],
  });
} finally {
  stopChildren();
}
process.exit(0);
