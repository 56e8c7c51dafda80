// SSH key pairs for LRPs with allow_ssh, made ahead of need. An RSA 2048 key takes ~150 ms of
// CPU; made synchronously in a request it would stall every other request of the process, so
// the pool makes them asynchronously on libuv's thread pool and hands one out at once. Only
// when the pool is empty (the first key, or a burst larger than it) is a key made on the spot.
import { generateKeyPair } from 'node:crypto';
import { promisify } from 'node:util';
import { generateSshKeyPair, sshKeyPairFromPrivateKey, type SshKeyPair, type SshKeyPairGenerator } from './recipe/index.js';

const generateKeyPairAsync = promisify(generateKeyPair);

export interface SshKeyPool {
  /** A key pair now: from the pool, or made on the spot when it is empty. */
  take: SshKeyPairGenerator;
  /** How many are ready. */
  readonly available: number;
  /** Stops refilling. */
  close(): void;
}

export interface SshKeyPoolOptions {
  /** Keys kept ready. */
  size?: number;
  /** Makes one key pair asynchronously (RSA 2048 on the thread pool by default). */
  generate?: () => Promise<SshKeyPair>;
  /** Makes one key pair synchronously when the pool is empty. */
  fallback?: SshKeyPairGenerator;
}

async function rsaKeyPair(): Promise<SshKeyPair> {
  const { privateKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048, publicExponent: 0x10001 });
  return sshKeyPairFromPrivateKey(privateKey);
}

export function createSshKeyPool(options: SshKeyPoolOptions = {}): SshKeyPool {
  const size = options.size ?? 8;
  const generate = options.generate ?? rsaKeyPair;
  const fallback = options.fallback ?? generateSshKeyPair;
  const ready: SshKeyPair[] = [];
  let making = 0;
  let closed = false;

  function refill(): void {
    while (!closed && ready.length + making < size) {
      making++;
      generate()
        .then((pair) => {
          if (!closed) ready.push(pair);
        })
        // A failed attempt is retried by the next take(); the fallback covers the gap.
        .catch(() => undefined)
        .finally(() => making--);
    }
  }

  // Nothing is made until the first key is taken: a process that never desires an LRP with
  // SSH (or a bulker pass with nothing missing) spends no CPU on keys.
  return {
    take() {
      const pair = ready.shift() ?? fallback();
      refill();
      return pair;
    },
    get available() {
      return ready.length;
    },
    close() {
      closed = true;
      ready.length = 0;
    },
  };
}
