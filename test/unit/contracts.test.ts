// The CC routes as the contracts declare them: the gateway builds its table from exactly this.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NsyncServiceDefinition } from '../../gen/cloudfoundry/ccbridge/nsync/v1/nsync.js';
import { StagerServiceDefinition } from '../../gen/cloudfoundry/ccbridge/stager/v1/stager.js';
import { TpsServiceDefinition } from '../../gen/cloudfoundry/ccbridge/tps/v1/tps.js';
import { routesFor } from '../../gateway/routes.js';

test('the nine CC routes are in the descriptors with their verbs, paths and legacy success statuses', () => {
  const routes = routesFor([StagerServiceDefinition, NsyncServiceDefinition, TpsServiceDefinition]).map((r) => ({
    rpc: r.path,
    verb: r.verb,
    path: r.template,
    success: r.legacy.successStatus,
  }));
  assert.deepEqual(routes, [
    { rpc: '/cloudfoundry.ccbridge.stager.v1.StagerService/Stage', verb: 'PUT', path: '/v1/staging/{staging_guid}', success: 202 },
    { rpc: '/cloudfoundry.ccbridge.stager.v1.StagerService/StopStaging', verb: 'DELETE', path: '/v1/staging/{staging_guid}', success: 202 },
    { rpc: '/cloudfoundry.ccbridge.stager.v1.StagerService/StagingCompleted', verb: 'POST', path: '/v1/staging/{staging_guid}/completed', success: 200 },
    { rpc: '/cloudfoundry.ccbridge.nsync.v1.NsyncService/DesireApp', verb: 'PUT', path: '/v1/apps/{process_guid}', success: 202 },
    { rpc: '/cloudfoundry.ccbridge.nsync.v1.NsyncService/StopApp', verb: 'DELETE', path: '/v1/apps/{process_guid}', success: 202 },
    { rpc: '/cloudfoundry.ccbridge.nsync.v1.NsyncService/KillIndex', verb: 'DELETE', path: '/v1/apps/{process_guid}/index/{index}', success: 202 },
    { rpc: '/cloudfoundry.ccbridge.tps.v1.TpsService/GetLrpStatus', verb: 'GET', path: '/v1/actual_lrps/{process_guid}', success: 200 },
    { rpc: '/cloudfoundry.ccbridge.tps.v1.TpsService/GetLrpStats', verb: 'GET', path: '/v1/actual_lrps/{process_guid}/stats', success: 200 },
    { rpc: '/cloudfoundry.ccbridge.tps.v1.TpsService/BulkLrpStatus', verb: 'GET', path: '/v1/bulk_actual_lrp_status', success: 200 },
  ]);
});

test('WatchInstances is a server stream with no REST route', () => {
  const watch = TpsServiceDefinition.methods.watchInstances;
  assert.equal(watch.responseStream, true);
  assert.equal(watch.requestStream, false);
  assert.ok(!routesFor([TpsServiceDefinition]).some((r) => r.method.name === 'WatchInstances'));
});
