import { spawn } from 'node:child_process';

export interface ChildOutput {
  code: number | null;
  out: string;
  err: string;
}

/**
 * Runs a command to its end and hands back what it wrote. The load generators and each backend's inference run
 * in processes of their own, so they share no event loop with the process that measures them.
 */
export function childOutput(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<ChildOutput> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}
