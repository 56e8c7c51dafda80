// A desired LRP shaped like Cloud Controller's, for the TPS and stager benchmarks.
import { DesiredLRP } from '../../gen/diego/bbs/v1/desired_lrp.js';

export function benchDesiredLrp(processGuid: string, instances: number): DesiredLRP {
  return DesiredLRP.fromPartial({
    processGuid,
    domain: 'cf-apps',
    rootFs: 'preloaded:cflinuxfs4',
    instances,
    logGuid: processGuid.slice(0, 36),
    metricsGuid: processGuid.slice(0, 36),
    metricTags: { source_id: { static: processGuid.slice(0, 36), dynamic: 0 } },
    memoryMb: 256,
    diskMb: 1024,
    ports: [8080],
    annotation: '1764150000.0',
    routes: { routes: { 'cf-router': Buffer.from(JSON.stringify([{ hostnames: [`${processGuid.slice(0, 8)}.example.com`], port: 8080 }])) } },
    action: { runAction: { path: '/tmp/lifecycle/launcher', args: ['app', 'node server.js', '{}'], user: 'vcap', env: [], dir: '', logSource: 'APP', suppressLogOutput: false, volumeMountedFiles: [] } },
  });
}
