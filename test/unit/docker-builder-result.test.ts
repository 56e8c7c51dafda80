import assert from 'node:assert/strict';
import { test } from 'node:test';
import { executionMetadataOf, readConfig, stagingResultOf, startCommandOf } from '../../lifecycles/docker/builder.mjs';
import type { ImageMetadata } from '../../lifecycles/docker/lib/registry.mjs';

const empty: ImageMetadata = { entrypoint: [], cmd: [], env: [], exposedPorts: [], user: '', workdir: '' };

test('execution metadata: the 2015 field order, empty fields left out, ports with Go field names', () => {
  const cases = [
    { name: 'nothing set', input: empty, want: '{}' },
    {
      name: 'everything set',
      input: { ...empty, entrypoint: ['/bin/busybox'], cmd: ['httpd', '-f'], workdir: '/www', user: 'vcap', exposedPorts: [{ port: 8080, protocol: 'tcp' }, { port: 8080, protocol: 'udp' }] },
      want: '{"cmd":["httpd","-f"],"entrypoint":["/bin/busybox"],"workdir":"/www","ports":[{"Port":8080,"Protocol":"tcp"},{"Port":8080,"Protocol":"udp"}],"user":"vcap"}',
    },
    { name: 'HTML characters escaped as Go does', input: { ...empty, cmd: ['sh', '-c', 'a < b && c > d'] }, want: '{"cmd":["sh","-c","a \\u003c b \\u0026\\u0026 c \\u003e d"]}' },
  ];
  for (const { name, input, want } of cases) assert.equal(executionMetadataOf(input), want, name);
});

test('start command: entrypoint then cmd; the result has the 2015 keys and today\'s', () => {
  const metadata = { ...empty, entrypoint: ['/bin/busybox'], cmd: ['httpd', '-f'] };
  assert.equal(startCommandOf(metadata), '/bin/busybox httpd -f');
  assert.equal(startCommandOf({ ...empty, cmd: ['node', 'server.js'] }), 'node server.js');
  assert.deepEqual(stagingResultOf(metadata, 'busybox:latest'), {
    execution_metadata: '{"cmd":["httpd","-f"],"entrypoint":["/bin/busybox"]}',
    detected_start_command: { web: '/bin/busybox httpd -f' },
    docker_image: 'busybox:latest',
    lifecycle_type: 'docker',
    lifecycle_metadata: { docker_image: 'busybox:latest' },
    process_types: { web: '/bin/busybox httpd -f' },
  });
});

test('flags: the stager\'s spelling, repeated insecure registries, the docker:// form, bad combinations', () => {
  const config = readConfig([
    '-outputMetadataJSONFilename', '/tmp/docker-result/result.json',
    '-dockerRef', 'busybox',
    '-insecureDockerRegistries', 'a:1,b:2',
    '--insecureDockerRegistries=c:3',
    '-dockerUser', 'u', '-dockerPassword', 'p', '-dockerEmail', 'e',
    '-cacheDockerImage', '-dockerRegistryHost', 'cache.internal', '-dockerRegistryPort', '8080', '-dockerRegistryIPs', '10.0.0.1',
  ]);
  assert.equal(config.outputMetadata, '/tmp/docker-result/result.json');
  assert.equal(config.image.familiar, 'busybox:latest');
  assert.deepEqual(config.insecureRegistries, ['a:1', 'b:2', 'c:3']);
  assert.deepEqual(config.cache, { host: 'cache.internal', port: 8080 });
  assert.equal(config.username, 'u');

  assert.equal(readConfig(['-dockerImageURL', 'docker://10.0.0.5:5000/team/app#v2']).image.canonical, '10.0.0.5:5000/team/app:v2');
  assert.throws(() => readConfig([]), /dockerRef or dockerImageURL required/);
  assert.throws(() => readConfig(['-dockerRef', 'a', '-dockerImageURL', 'docker:///b']), /cannot both be given/);
  assert.throws(() => readConfig(['-dockerRef', 'a', '-dockerUser', 'u']), /go together/);
  assert.throws(() => readConfig(['-dockerRef', 'a', '-cacheDockerImage']), /dockerRegistryHost required/);
  assert.throws(() => readConfig(['-dockerRef', 'a', '-noSuchFlag']), /flag provided but not defined: -noSuchFlag/);
});
