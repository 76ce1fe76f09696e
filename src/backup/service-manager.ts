// Services a restore stops and starts (VSS_RME_STOP_RESTORE_START, VSS_RME_RESTORE_STOP_START).
// On Linux a writer's "service" is a systemd unit by default; ProcessServiceManager runs
// services as plain processes, for hosts without systemd and for tests.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { VssError } from '../vss/errors.js';

export interface ServiceManager {
  stop(service: string): Promise<void>;
  start(service: string): Promise<void>;
}

/** systemctl stop/start; a failure names the unit and systemctl's own words. */
export class SystemdServiceManager implements ServiceManager {
  constructor(private readonly systemctl = 'systemctl') {}

  private run(verb: 'stop' | 'start', unit: string): Promise<void> {
    const r = spawnSync(this.systemctl, [verb, unit], { encoding: 'utf8', timeout: 120_000 });
    if (r.error) {
      return Promise.reject(new VssError('VSS_E_NOT_SUPPORTED', `cannot ${verb} service ${unit}: ${r.error.message}; is systemd running here? Otherwise restore with a service manager of your own`, { cause: r.error }));
    }
    if (r.status !== 0) {
      return Promise.reject(new VssError('VSS_E_UNEXPECTED', `systemctl ${verb} ${unit} failed (exit ${r.status}): ${(r.stderr || r.stdout).trim()}`));
    }
    return Promise.resolve();
  }

  stop(service: string): Promise<void> {
    return this.run('stop', service);
  }

  start(service: string): Promise<void> {
    return this.run('start', service);
  }
}

export interface ProcessService {
  command: string;
  args?: string[];
  /** How long stop waits for the process to exit after SIGTERM before SIGKILL (default 10 s). */
  stopTimeoutMs?: number;
}

/** Services as child processes: start spawns, stop terminates and waits. Keeps a log of calls. */
export class ProcessServiceManager implements ServiceManager {
  readonly calls: { verb: 'stop' | 'start'; service: string; at: number }[] = [];
  private readonly running = new Map<string, ChildProcess>();

  constructor(private readonly services: Record<string, ProcessService>) {}

  private service(name: string): ProcessService {
    const s = this.services[name];
    if (!s) throw new VssError('VSS_E_OBJECT_NOT_FOUND', `service "${name}" is not defined; known services: ${Object.keys(this.services).join(', ') || 'none'}`);
    return s;
  }

  isRunning(name: string): boolean {
    const p = this.running.get(name);
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  async start(name: string): Promise<void> {
    const s = this.service(name);
    this.calls.push({ verb: 'start', service: name, at: Date.now() });
    if (this.isRunning(name)) return;
    const child = spawn(s.command, s.args ?? [], { stdio: 'ignore' });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (e) => reject(new VssError('VSS_E_UNEXPECTED', `cannot start service "${name}" (${s.command}): ${e.message}`, { cause: e })));
    });
    this.running.set(name, child);
  }

  async stop(name: string): Promise<void> {
    const s = this.service(name);
    this.calls.push({ verb: 'stop', service: name, at: Date.now() });
    const child = this.running.get(name);
    this.running.delete(name);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), s.stopTimeoutMs ?? 10_000);
    await exited;
    clearTimeout(timer);
  }

  /** Stops everything still running (for test cleanup). */
  async stopAll(): Promise<void> {
    for (const name of [...this.running.keys()]) await this.stop(name);
  }
}
