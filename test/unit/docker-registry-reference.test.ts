import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  imageMetadataOf,
  normalizeRegistryHost,
  parseChallenge,
  parseDockerRootfsUri,
  parseImageReference,
  RegistryError,
} from '../../lifecycles/docker/lib/registry.mjs';

const SHA = `sha256:${'ab'.repeat(32)}`;

test('image references as CC sends them, with Docker Hub defaults', () => {
  const cases = [
    { input: 'busybox', want: { registry: 'registry-1.docker.io', repository: 'library/busybox', reference: 'latest', familiar: 'busybox:latest' } },
    { input: 'user/image:tag', want: { registry: 'registry-1.docker.io', repository: 'user/image', reference: 'tag', familiar: 'user/image:tag' } },
    { input: 'docker.io/busybox:1.36', want: { registry: 'registry-1.docker.io', repository: 'library/busybox', reference: '1.36', familiar: 'docker.io/busybox:1.36' } },
    { input: 'localhost/app', want: { registry: 'localhost', repository: 'app', reference: 'latest', familiar: 'localhost/app:latest' } },
    { input: '127.0.0.1:5000/team/app:v2', want: { registry: '127.0.0.1:5000', repository: 'team/app', reference: 'v2', familiar: '127.0.0.1:5000/team/app:v2' } },
    { input: 'a:123/b/c:456', want: { registry: 'a:123', repository: 'b/c', reference: '456', familiar: 'a:123/b/c:456' } },
    { input: `busybox@${SHA}`, want: { registry: 'registry-1.docker.io', repository: 'library/busybox', reference: SHA, familiar: `busybox@${SHA}` } },
    { input: `reg.example.com/app:1@${SHA}`, want: { registry: 'reg.example.com', repository: 'app', reference: SHA, familiar: `reg.example.com/app@${SHA}` } },
  ];
  for (const { input, want } of cases) {
    const parsed = parseImageReference(input);
    assert.deepEqual(
      { registry: parsed.registry, repository: parsed.repository, reference: parsed.reference, familiar: parsed.familiar },
      want,
      input,
    );
  }
});

test('bad references are INVALID_REFERENCE errors', () => {
  for (const input of ['', 'https://docker.io/repo', 'Upper/case', 'repo:bad tag', `repo@sha256:abc`, 'repo#x', 'repo:']) {
    assert.throws(() => parseImageReference(input), (err: unknown) => err instanceof RegistryError && err.code === 'INVALID_REFERENCE', input);
  }
});

test('rootfs URIs as the nsync recipe writes them', () => {
  const cases = [
    { input: 'docker:///library/busybox', want: ['registry-1.docker.io', 'library/busybox', 'latest'] },
    { input: 'docker:///user/image#tag', want: ['registry-1.docker.io', 'user/image', 'tag'] },
    { input: 'docker://docker.io/library/image', want: ['registry-1.docker.io', 'library/image', 'latest'] },
    { input: 'docker://10.244.2.6:8080/user/image#tag', want: ['10.244.2.6:8080', 'user/image', 'tag'] },
    { input: `docker://127.0.0.1:5000/app#${SHA}`, want: ['127.0.0.1:5000', 'app', SHA] },
  ];
  for (const { input, want } of cases) {
    const parsed = parseDockerRootfsUri(input);
    assert.deepEqual([parsed.registry, parsed.repository, parsed.reference], want, input);
  }
  assert.throws(() => parseDockerRootfsUri('oci:///x'), RegistryError);
});

test('registry hosts: Docker Hub aliases, schemes and paths', () => {
  assert.equal(normalizeRegistryHost('https://index.docker.io/v1/'), 'registry-1.docker.io');
  assert.equal(normalizeRegistryHost('docker.io'), 'registry-1.docker.io');
  assert.equal(normalizeRegistryHost('Registry.Example.com:443'), 'registry.example.com:443');
});

test('WWW-Authenticate challenges', () => {
  assert.deepEqual(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'), {
    scheme: 'bearer',
    realm: 'https://auth.docker.io/token',
    service: 'registry.docker.io',
    scope: 'repository:library/busybox:pull',
  });
  assert.deepEqual(parseChallenge('Basic realm="basic-realm"'), { scheme: 'basic', realm: 'basic-realm' });
  assert.equal(parseChallenge(undefined), undefined);
});

test('image metadata: absent values empty, ports sorted with tcp first', () => {
  const metadata = imageMetadataOf({
    config: { Cmd: ['httpd', '-f'], ExposedPorts: { '9000/udp': {}, '9000/tcp': {}, '8080/tcp': {}, bogus: {} }, User: 'vcap', WorkingDir: '/app', Env: ['A=1'] },
  });
  assert.deepEqual(metadata, {
    entrypoint: [],
    cmd: ['httpd', '-f'],
    env: ['A=1'],
    exposedPorts: [
      { port: 8080, protocol: 'tcp' },
      { port: 9000, protocol: 'tcp' },
      { port: 9000, protocol: 'udp' },
    ],
    user: 'vcap',
    workdir: '/app',
  });
  assert.deepEqual(imageMetadataOf({ config: null }), { entrypoint: [], cmd: [], env: [], exposedPorts: [], user: '', workdir: '' });
});
