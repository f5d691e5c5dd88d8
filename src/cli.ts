// `countersign <command>`: argument parsing and terminal output only; the work is in main.ts.
import { readFileSync } from 'node:fs';
import { CountersignError } from './core/errors.ts';
import { loadPolicy } from './core/policy/policy.ts';
import { auditVerify, start } from './main.ts';

const USAGE = `usage: countersign <command>

  start                 run the server (HTTP API, chat adapters, queue workers)
  policy check FILE     load FILE as the policy and report the first problem, if any
  audit verify          recompute the audit hash chain and name the first broken entry

Configuration comes from the environment: see .env.example.`;

type Env = Readonly<Record<string, string | undefined>>;

const out = (line: string) => process.stdout.write(`${line}\n`);
const err = (line: string) => process.stderr.write(`${line}\n`);

async function runStart(env: Env): Promise<number> {
  const running = await start(env);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      err(`${signal}: stopping…`);
      running.stop().then(resolve, (e: unknown) => {
        err(`error while stopping: ${(e as Error).message}`);
        resolve();
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  return 0;
}

export async function runCli(args: string[], env: Env): Promise<number> {
  const [command, sub, ...rest] = args;
  try {
    if (command === 'start' || command === undefined) return await runStart(env);
    if (command === 'policy' && sub === 'check' && rest[0] !== undefined) {
      const policy = loadPolicy(readFileSync(rest[0], 'utf8'), rest[0], env);
      out(`${rest[0]}: ok (${policy.rules.length} rules, ${policy.agents.size} agents, ${policy.people.size} people)`);
      return 0;
    }
    if (command === 'audit' && sub === 'verify') {
      const verdict = await auditVerify(env, err);
      if (verdict.ok) {
        out(`audit chain ok: ${verdict.count} entries, head ${verdict.head}`);
        return 0;
      }
      out(`audit chain BROKEN at seq ${verdict.seq} (stream id ${verdict.id}): ${verdict.reason}; ${verdict.count} entries before it verified`);
      return 1;
    }
    if (command === 'help' || command === '--help' || command === '-h') {
      out(USAGE);
      return 0;
    }
    err(USAGE);
    return 2;
  } catch (e) {
    if (e instanceof CountersignError) {
      err(`countersign: ${e.message}`);
      return 1;
    }
    if (e instanceof Error && /redis-server is not installed/.test(e.message)) {
      err(`countersign: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
