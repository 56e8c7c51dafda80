// One app instance (a DesiredLRP at an index) on this cell: its container, the instance
// environment, the setup action then the action, health checking, container metrics, and a
// graceful stop. What happens is told through callbacks; the cell turns them into the BBS's
// cell-side calls (start, crash, routable) over HTTP.
//
// Health, as Diego decides it (spec/diego-today.md §1.6, spec/ccbridge-2015.md §11):
//  - a check_definition with checks: they run every checkStartIntervalMs until all pass (then
//    onRunning), then each on its own interval; a failure crashes the instance;
//  - else a monitor action: run every monitorStartIntervalMs until it succeeds, then every
//    monitorHealthyIntervalMs; a failure crashes the instance;
//  - else the instance is running as soon as its action has started.
// start_timeout_ms bounds the time to the first healthy answer ("Instance never healthy after").
// Readiness checks start once the instance runs; the instance is not ready until they first
// pass, and onReadinessChanged follows every change. Without readiness checks an instance is
// routable once running and onReadinessChanged is never called.
import { setTimeout as sleep } from 'node:timers/promises';
import type { EnvironmentVariable } from '../../../gen/diego/bbs/v1/container.js';
import type { DesiredLRP } from '../../../gen/diego/bbs/v1/desired_lrp.js';
import type { Logger } from '../../../lib/log.js';
import type { ActionContext, ActionRunner } from './actions.js';
import { checkPorts, prepareCheck, runChecks, type CheckDefaults, type PreparedCheck } from './checks.js';
import type { Container, ContainerSpec } from './container.js';
import { imageCredentialsOf, rootFailureReason, type PrepareRoot } from './roots.js';
import { CLOCK_TICKS_PER_SECOND } from './proc.js';
import { goDuration, guarded, type LogSink, type MetricsSink, type PortMapping } from './types.js';

export interface LrpRunnerOptions {
  createContainer(spec: Omit<ContainerSpec, 'dataDir'>): Promise<Container>;
  actions: ActionRunner;
  logger: Logger;
  /** The container root for an LRP's root_fs (an image is pulled); throws for a rootfs this cell cannot provide. */
  prepareRoot: PrepareRoot;
  hostServicePorts: number[];
  /** Named in the CELL log lines ("Cell <id> creating container for instance <guid>"). */
  cellId: string;
  /** SIGTERM to SIGKILL when an instance is stopped or its action is ended after a failed check. */
  stopGraceMs: number;
  monitorStartIntervalMs: number;
  monitorHealthyIntervalMs: number;
  checkStartIntervalMs: number;
  /** For checks that name no interval or timeout. */
  checkDefaults: CheckDefaults;
  metricsIntervalMs: number;
}

export interface NetInfo {
  address: '127.0.0.1';
  ports: PortMapping[];
}

export interface LrpInstanceRequest {
  desiredLrp: DesiredLRP;
  index: number;
  instanceGuid: string;
  logSink: LogSink;
  metricsSink?: MetricsSink;
  onRunning(netInfo: NetInfo): void;
  onReadinessChanged?(ready: boolean): void;
  /** The instance has ended without being stopped; its container is being destroyed. */
  onCrashed(reason: string): void;
}

export type LrpInstanceState = 'starting' | 'running' | 'crashed' | 'stopped';

export interface LrpInstance {
  readonly instanceGuid: string;
  readonly state: LrpInstanceState;
  readonly netInfo: NetInfo | undefined;
  /** Resolves once the instance's container is gone, after a crash or a stop. */
  readonly done: Promise<void>;
  /** SIGTERM to the app, SIGKILL after the grace period, then the container is destroyed. */
  stop(): Promise<void>;
  /** Host pids of the instance's processes. */
  processIds(): number[];
}

export interface LrpRunner {
  startLrpInstance(request: LrpInstanceRequest): LrpInstance;
}

/** The instance's environment: the desired one (VCAP_APPLICATION with the instance's fields) plus Diego's instance variables. */
export function instanceEnvironment(lrp: DesiredLRP, index: number, instanceGuid: string, mappings: PortMapping[]): EnvironmentVariable[] {
  const published = mappings.filter((mapping) => lrp.ports.includes(mapping.containerPort));
  const first = published[0];
  const env = lrp.environmentVariables.map((variable) =>
    variable.name === 'VCAP_APPLICATION' ? { name: variable.name, value: withInstanceFields(variable.value, index, instanceGuid, first) } : variable,
  );
  const add = (name: string, value: string) => env.push({ name, value });
  add('INSTANCE_GUID', instanceGuid);
  add('INSTANCE_INDEX', String(index));
  add('CF_INSTANCE_GUID', instanceGuid);
  add('CF_INSTANCE_INDEX', String(index));
  add('CF_INSTANCE_IP', '127.0.0.1');
  add('CF_INSTANCE_INTERNAL_IP', '127.0.0.1');
  add('CF_INSTANCE_PORT', first ? String(first.hostPort) : '');
  add('CF_INSTANCE_ADDR', first ? `127.0.0.1:${first.hostPort}` : '');
  add('CF_INSTANCE_PORTS', JSON.stringify(published.map((mapping) => ({ external: mapping.hostPort, internal: mapping.containerPort }))));
  if (first && !env.some((variable) => variable.name === 'PORT')) add('PORT', String(first.containerPort));
  return env;
}

function withInstanceFields(value: string, index: number, instanceGuid: string, first: PortMapping | undefined): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return value;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return value;
  return JSON.stringify({
    ...(parsed as Record<string, unknown>),
    instance_id: instanceGuid,
    instance_index: index,
    host: '0.0.0.0',
    ...(first ? { port: first.containerPort } : {}),
  });
}

/** start_timeout_ms, else the deprecated seconds; 0 is no bound. */
export function startTimeoutMsOf(lrp: DesiredLRP): number {
  const ms = Number(lrp.startTimeoutMs || '0');
  return ms > 0 ? ms : Math.max(lrp.deprecatedStartTimeoutS, 0) * 1000;
}

/** Sleeps ms; false when the signal ended the wait. */
async function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

export function createLrpRunner(options: LrpRunnerOptions): LrpRunner {
  const log = options.logger.child({ session: 'executor.lrp' });

  return {
    startLrpInstance(unguarded) {
      const { desiredLrp: lrp, index, instanceGuid } = unguarded;
      const instanceLog = log.child({ process_guid: lrp.processGuid, index, instance_guid: instanceGuid });
      const report = (what: string) => (error: unknown) => instanceLog.error({ err: { message: (error as Error).message } }, `${what}-failed`);
      const request = {
        ...unguarded,
        logSink: guarded(unguarded.logSink, report('log-sink')),
        metricsSink: unguarded.metricsSink && guarded(unguarded.metricsSink, report('metrics-sink')),
        onRunning: guarded(unguarded.onRunning, report('on-running')),
        onReadinessChanged: unguarded.onReadinessChanged && guarded(unguarded.onReadinessChanged, report('on-readiness-changed')),
        onCrashed: guarded(unguarded.onCrashed, report('on-crashed')),
      };
      const stopping = new AbortController();
      let state: LrpInstanceState = 'starting';
      let container: Container | undefined;
      let netInfo: NetInfo | undefined;
      const source = lrp.logSource || 'APP';
      const cellLine = (message: string) => request.logSink({ source: 'CELL', message, stream: 'OUT' });
      const liveness = lrp.checkDefinition?.checks ?? [];
      const readiness = lrp.checkDefinition?.readinessChecks ?? [];

      const becomeRunning = (running: Container) => {
        if (state !== 'starting') return;
        state = 'running';
        netInfo = { address: '127.0.0.1', ports: running.portMappings.filter((mapping) => lrp.ports.includes(mapping.containerPort)) };
        instanceLog.info({ ports: netInfo.ports }, 'instance-running');
        request.onRunning(netInfo);
      };

      /** Resolves with a crash reason, or undefined once `signal` ends the watch. */
      async function watchHealth(running: Container, context: ActionContext): Promise<string | undefined> {
        const { signal } = context;
        const startTimeoutMs = startTimeoutMsOf(lrp);
        const startedAt = Date.now();
        const neverHealthy = (last: string) =>
          startTimeoutMs > 0 && Date.now() - startedAt >= startTimeoutMs ? `Instance never healthy after ${goDuration(startTimeoutMs)}: ${last}` : undefined;

        if (liveness.length > 0) {
          const checks = liveness.map((check) => prepareCheck(check, running, options.checkDefaults));
          // Bounded by the start timeout, or, without one, by the instance's life (its signal).
          for (;;) {
            const failed = await runChecks(checks, signal);
            if (signal.aborted) return undefined;
            if (failed === undefined) break;
            const gaveUp = neverHealthy(failed);
            if (gaveUp) return gaveUp;
            if (!(await pause(options.checkStartIntervalMs, signal))) return undefined;
          }
          cellLine('Container became healthy');
          becomeRunning(running);
          void watchReadiness(running, signal);
          // The first failing check ends the others' loops too.
          const watch = new AbortController();
          const onAbort = () => watch.abort();
          signal.addEventListener('abort', onAbort, { once: true });
          try {
            const failures = await Promise.all(
              checks.map(async (check) => {
                const failed = await keepChecking(check, watch.signal);
                if (failed !== undefined) watch.abort();
                return failed;
              }),
            );
            return failures.find((failure) => failure !== undefined);
          } finally {
            signal.removeEventListener('abort', onAbort);
          }
        }

        if (lrp.monitor) {
          for (;;) {
            const result = await options.actions.run(lrp.monitor, context);
            if (signal.aborted) return undefined;
            if (!result.failed) break;
            const gaveUp = neverHealthy(result.failureReason);
            if (gaveUp) return gaveUp;
            if (!(await pause(options.monitorStartIntervalMs, signal))) return undefined;
          }
          cellLine('Container became healthy');
          becomeRunning(running);
          void watchReadiness(running, signal);
          for (;;) {
            if (!(await pause(options.monitorHealthyIntervalMs, signal))) return undefined;
            const result = await options.actions.run(lrp.monitor, context);
            if (signal.aborted) return undefined;
            if (result.failed) {
              cellLine('Container became unhealthy');
              return `Instance became unhealthy: ${result.failureReason}`;
            }
          }
        }

        becomeRunning(running);
        void watchReadiness(running, signal);
        return undefined;
      }

      /** One liveness check on its interval until it fails (the reason) or the watch ends. */
      async function keepChecking(check: PreparedCheck, signal: AbortSignal): Promise<string | undefined> {
        for (;;) {
          if (!(await pause(check.intervalMs, signal))) return undefined;
          const failed = await check.run(signal);
          if (signal.aborted) return undefined;
          if (failed !== undefined) {
            cellLine('Container became unhealthy');
            return `Instance became unhealthy: ${failed}`;
          }
        }
      }

      async function watchReadiness(running: Container, signal: AbortSignal): Promise<void> {
        if (readiness.length === 0) return;
        const checks = readiness.map((check) => prepareCheck(check, running, options.checkDefaults));
        const intervalMs = Math.min(...checks.map((check) => check.intervalMs));
        let ready = false;
        for (;;) {
          const failed = await runChecks(checks, signal);
          if (signal.aborted) return;
          if ((failed === undefined) !== ready) {
            ready = failed === undefined;
            instanceLog.info({ ready }, 'instance-readiness-changed');
            request.onReadinessChanged?.(ready);
          }
          if (!(await pause(intervalMs, signal))) return;
        }
      }

      function sampleMetrics(running: Container): () => void {
        const sink = request.metricsSink;
        if (sink === undefined) return () => undefined;
        let last = { ticks: running.usage().cpuTicks, atMs: Date.now() };
        let sampling = false;
        const timer = setInterval(() => {
          // A slow disk walk must not pile samples up.
          if (sampling || running.destroyed) return;
          sampling = true;
          const usage = running.usage();
          const atMs = Date.now();
          const seconds = Math.max((atMs - last.atMs) / 1000, 0.001);
          // Processes that ended since the last sample take their CPU time with them: never below 0.
          const cpuFraction = Math.max(usage.cpuTicks - last.ticks, 0) / CLOCK_TICKS_PER_SECOND / seconds;
          last = { ticks: usage.cpuTicks, atMs };
          void running
            .diskBytes()
            .then((diskBytes) => {
              if (running.destroyed) return;
              sink({
                cpuFraction,
                cpuPercentage: cpuFraction * 100,
                memoryBytes: usage.residentBytes,
                diskBytes,
                memoryQuotaBytes: lrp.memoryMb * 1024 * 1024,
                diskQuotaBytes: lrp.diskMb * 1024 * 1024,
              });
            })
            .finally(() => (sampling = false));
        }, options.metricsIntervalMs);
        return () => clearInterval(timer);
      }

      /** Setup, then the action with health checks beside it; a crash reason, or undefined when stopped. */
      async function runInstance(running: Container): Promise<string | undefined> {
        const life = new AbortController();
        const onStop = () => life.abort(stopping.signal.reason);
        stopping.signal.addEventListener('abort', onStop, { once: true });
        const context: ActionContext = { container: running, signal: life.signal, logSource: source, logSink: request.logSink, stopGraceMs: options.stopGraceMs };
        try {
          if (lrp.setup) {
            const setup = await options.actions.run(lrp.setup, context);
            if (stopping.signal.aborted) return undefined;
            if (setup.failed) return setup.failureReason;
          }
          let crashReason: string | undefined;
          const action = options.actions.run(lrp.action, context).then((result) => {
            crashReason ??= result.failed ? result.failureReason : 'Exited with status 0';
            life.abort(new Error('action exited'));
          });
          const health = watchHealth(running, context).then((reason) => {
            if (reason === undefined) return;
            crashReason ??= reason;
            life.abort(new Error('unhealthy'));
          });
          await Promise.all([action, health]);
          return stopping.signal.aborted ? undefined : crashReason;
        } finally {
          stopping.signal.removeEventListener('abort', onStop);
        }
      }

      const done = (async () => {
        cellLine(`Cell ${options.cellId} creating container for instance ${instanceGuid}`);
        const ports = [...new Set([...lrp.ports, ...checkPorts([...liveness, ...readiness])])];
        let root: Awaited<ReturnType<PrepareRoot>> | undefined;
        try {
          root = await options.prepareRoot(lrp.rootFs, imageCredentialsOf(lrp), stopping.signal);
          container = await options.createContainer({
            guid: instanceGuid,
            rootfs: root.rootfs,
            readOnlyBinds: root.readOnlyBinds,
            env: (mappings) => [...root!.env, ...instanceEnvironment(lrp, index, instanceGuid, mappings)],
            ports,
            memoryMb: lrp.memoryMb,
            diskMb: lrp.diskMb,
            logSink: request.logSink,
            logSource: source,
            hostServicePorts: options.hostServicePorts,
          });
        } catch (error) {
          root?.release();
          const reason = root === undefined ? rootFailureReason(error) : `failed to create container: ${(error as Error).message}`;
          instanceLog.error({ err: { message: (error as Error).message } }, root === undefined ? 'failed-to-prepare-instance-root' : 'failed-to-create-instance-container');
          if (stopping.signal.aborted) {
            state = 'stopped';
            return;
          }
          cellLine(`Cell ${options.cellId} failed to create container for instance ${instanceGuid}: ${reason}`);
          state = 'crashed';
          request.onCrashed(reason);
          return;
        }
        cellLine(`Cell ${options.cellId} successfully created container for instance ${instanceGuid}`);
        const stopMetrics = sampleMetrics(container);
        try {
          const crashReason = stopping.signal.aborted ? undefined : await runInstance(container);
          if (crashReason !== undefined && !stopping.signal.aborted) {
            state = 'crashed';
            instanceLog.info({ reason: crashReason }, 'instance-crashed');
            request.onCrashed(crashReason);
          } else {
            state = 'stopped';
          }
        } finally {
          stopMetrics();
          cellLine(`Cell ${options.cellId} destroying container for instance ${instanceGuid}`);
          await container.destroy();
          root.release();
          cellLine(`Cell ${options.cellId} successfully destroyed container for instance ${instanceGuid}`);
        }
      })().catch((error: unknown) => {
        // Nothing above throws by design; this keeps a bug from becoming an unhandled rejection.
        instanceLog.error({ err: { message: (error as Error).message } }, 'instance-failed');
      });

      return {
        instanceGuid,
        get state() {
          return state;
        },
        get netInfo() {
          return netInfo;
        },
        done,
        async stop() {
          if (!stopping.signal.aborted) {
            cellLine(`Cell ${options.cellId} stopping instance ${instanceGuid}`);
            stopping.abort(new Error('stopped'));
          }
          await done;
        },
        processIds() {
          return container?.processIds() ?? [];
        },
      };
    },
  };
}
