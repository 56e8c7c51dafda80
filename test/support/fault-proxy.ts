// A loopback TCP proxy for fault tests, put between the bridge and a neighbour (BBS, CC,
// Locket). Its mode says what happens to traffic:
//   pass       — bytes flow both ways (after `delayMs`, when set, for every chunk);
//   blackhole  — connections are accepted and their bytes swallowed: nothing is answered;
//   refuse     — new connections are closed at once (as if nothing listened);
//   down       — the listening port is closed (connection refused), `up()` reopens it.
// `cut()` drops every open connection (in-flight requests see a reset); `pause()` holds every
// byte in either direction until `resume()` (a call stays in flight as long as a test wants).
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export type FaultMode = 'pass' | 'blackhole' | 'refuse';

export interface FaultProxy {
  readonly port: number;
  /** host:port of the proxy. */
  readonly address: string;
  /** http://127.0.0.1:port */
  readonly url: string;
  mode: FaultMode;
  /** Delay added to every chunk in either direction while passing. */
  delayMs: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Destroys every open connection. */
  cut(): void;
  /** Chunks held by pause() right now. */
  readonly held: number;
  /** Connections with chunks held by pause() right now. */
  readonly heldConnections: number;
  /** Holds traffic (queued, not lost) until resume(). */
  pause(): void;
  resume(): void;
  /** Stops listening (and cuts): callers get "connection refused". */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startFaultProxy(target: { host?: string; port: number }, options: { port?: number } = {}): Promise<FaultProxy> {
  const targetHost = target.host ?? '127.0.0.1';
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let accepted = 0;
  let port = options.port ?? 0;
  let gate: { promise: Promise<void>; open: () => void } | undefined;
  let held = 0;
  const holding = new Map<Socket, number>();

  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };

  /** Forwards chunks in order, each after the proxy's delay at the time it arrived. */
  const pipe = (from: Socket, to: Socket) => {
    let chain = Promise.resolve();
    from.on('data', (chunk: Buffer) => {
      const delay = proxy.delayMs;
      chain = chain.then(async () => {
        if (gate) {
          held++;
          holding.set(from, (holding.get(from) ?? 0) + 1);
          while (gate) await gate.promise;
          held--;
          const left = (holding.get(from) ?? 1) - 1;
          if (left === 0) holding.delete(from);
          else holding.set(from, left);
        }
        if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
        if (!to.destroyed) to.write(chunk);
      });
    });
    from.on('end', () => void chain.then(() => to.end()));
    from.on('close', () => void chain.then(() => to.destroy()));
  };

  const onConnection = (client: Socket) => {
    accepted++;
    track(client);
    if (proxy.mode === 'refuse') return void client.destroy();
    if (proxy.mode === 'blackhole') return void client.resume();
    const upstream = connect({ host: targetHost, port: target.port });
    track(upstream);
    pipe(client, upstream);
    pipe(upstream, client);
  };

  const listen = async () => {
    const s = createServer(onConnection);
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve());
    });
    port = (s.address() as AddressInfo).port;
    server = s;
  };

  const cut = () => {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
  };

  const down = async () => {
    const s = server;
    server = undefined;
    cut();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };

  const proxy: FaultProxy = {
    get port() {
      return port;
    },
    get address() {
      return `127.0.0.1:${port}`;
    },
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    mode: 'pass',
    delayMs: 0,
    get accepted() {
      return accepted;
    },
    get held() {
      return held;
    },
    get heldConnections() {
      return holding.size;
    },
    cut,
    pause() {
      if (gate) return;
      let open!: () => void;
      const promise = new Promise<void>((resolve) => (open = resolve));
      gate = { promise, open };
    },
    resume() {
      const held = gate;
      gate = undefined;
      held?.open();
    },
    down,
    async up() {
      if (!server) await listen();
    },
    close: down,
  };
  await listen();
  return proxy;
}

/** Polls `probe` until it returns something truthy; generous deadlines, no fixed sleeps. */
export async function eventually<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
