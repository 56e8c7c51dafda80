// bench/tps server: embedded Diego seeded with N processes × 4 RUNNING instances, and the
// gateway with the TPS service in-process in front of it. Prints {"url": ...}.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBbsClient } from '../../clients/bbs/index.js';
import { createLogCacheClient } from '../../clients/logcache/client.js';
import { startEmbeddedDiego } from '../../embedded/diego/index.js';
import { ActualLRP_Presence } from '../../gen/diego/bbs/v1/actual_lrp.js';
import { TpsServiceDefinition } from '../../gen/cloudfoundry/ccbridge/tps/v1/tps.js';
import { inProcessDispatcher } from '../../gateway/dispatch.js';
import { startGateway } from '../../gateway/server.js';
import { silentLogger } from '../../lib/log.js';
import { buildTps } from '../../cmd/wiring/services.js';
import { benchDesiredLrp } from './shape.js';

const processes = Number(process.argv[2] ?? 1000);
const log = silentLogger();
const diego = await startEmbeddedDiego({ dataDir: mkdtempSync(join(tmpdir(), 'bench-tps-')), logger: log });
const since = (BigInt(Date.now()) * 1_000_000n).toString();
for (let p = 0; p < processes; p++) {
  const guid = `${p.toString(16).padStart(8, '0')}-4c2e-4a7b-9d3f-b0e9c1a45d3f-${'0'.repeat(8)}`;
  diego.bbs.desireLrp(benchDesiredLrp(guid, 4));
  for (let index = 0; index < 4; index++) {
    diego.bbs.changeActualLrp(guid, index, ActualLRP_Presence.PRESENCE_ORDINARY, (lrp) => ({
      ...lrp,
      state: 'RUNNING',
      since,
      actualLrpInstanceKey: { instanceGuid: `${guid.slice(0, 30)}-${index}`, cellId: 'cell-1' },
      actualLrpNetInfo: { address: '127.0.0.1', ports: [{ containerPort: 8080, hostPort: 61000 + index, containerTlsProxyPort: 0, hostTlsProxyPort: 0 }], instanceAddress: '', preferredAddress: 0, instanceIpv6Address: '' },
    }));
  }
}
const bbs = createBbsClient({ url: diego.url, logger: log });
const tps = buildTps({ bbs, logCache: createLogCacheClient({ url: diego.url }), logger: log, config: { maxInFlightRequests: 10_000, maxBulkGuids: 10_000 } });
const gateway = await startGateway({ logger: log, services: [{ definition: TpsServiceDefinition, dispatcher: inProcessDispatcher(TpsServiceDefinition, tps as never, log) }] });
process.stdout.write(`${JSON.stringify({ url: gateway.url, guids: diego.bbs.desiredLrps({}).map((l) => l.processGuid) })}\n`);
process.on('SIGINT', () => process.exit(0));
