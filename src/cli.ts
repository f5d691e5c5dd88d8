// `countersign <command>`: argument parsing and terminal output only; the work is in main.ts
// and the use cases. Results go to stdout, progress to stderr.
import { CountersignApiError } from './client/index.ts';
import { CountersignError, ValidationError } from './core/errors.ts';
import { start, type Running, type StartOptions, type Unfinished } from './main.ts';
import { consoleSignInLink, restoreAgent, revokeAgent } from './wiring/cli-commands.ts';
import { runDemo, runPropose } from './cli/agent-commands.ts';
import { AUDIT_EXPORT_FLAGS, AUDIT_SEARCH_FLAGS, AUDIT_VERIFY_FLAGS, runAuditExport, runAuditSearch, runAuditVerify } from './cli/audit-commands.ts';
import { Flags, usage, type Env, type Io } from './cli/io.ts';
import { runPolicyCheck, runPolicyReplay, runPolicyTest } from './cli/policy-commands.ts';

const USAGE = `usage: countersign <command>

  start                          run the server (HTTP API, console, chat adapters, queue workers)
  demo                           send a few example proposals as the demo agent (fills the console)
  propose FILE.json              sign FILE as an agent and submit it; --wait SECONDS waits for the decision
  policy check FILE              load FILE as the policy and report the first problem, if any
  policy test FILE PROPOSAL.json print the decision FILE makes for a proposal and the rule that matched
  policy replay FILE             re-run past proposals (--since 7d, --until) against FILE: which decisions change
  audit search [WORDS…]          search the audit log: --agent --actor --status --proposal --since --until --limit --json
  audit verify                   check the audit log: every entry's digest, the chain, the signed checkpoints;
                                 names the first broken entry. --keys FILE|URL (the published audit-keys.json),
                                 --against FILE|URL (the witness copy), --offline FILE (an export, no Redis), --json
  audit export                   the log as JSON lines (--format cef) with its chain and checkpoints, for a SIEM:
                                 --since TIME or --after-seq N, --follow to keep going
  revoke --agent ID              kill switch: refuse the agent's proposals, revoke its tokens, cancel its pending and queued actions
  restore --agent ID             lift the kill switch: the agent may propose again (what revoke cancelled stays cancelled)
  console link [PERSON]          a one-time console sign-in link (default: demo) for a running countersign

Agent commands (demo, propose) act as --agent ID (default demo-agent) with the secret from
--secret-file FILE or COUNTERSIGN_AGENT_SECRET (the demo agent's is found on its own), against
--url URL (default COUNTERSIGN_URL, else PUBLIC_URL / http://HOST:PORT).
Configuration comes from the environment: see .env.example.`;

const terminal: Io = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

const AGENT_FLAGS = ['url', 'agent', 'secret-file'];

/** How `countersign start` ends (README, "Stopping"): 128 + the signal's number after a second signal. */
export const EXIT_CODES = { clean: 0, forced: 1, secondSignal: { SIGINT: 130, SIGTERM: 143 } } as const;

/** The one line for what a stop left behind, and how recovery picks it up. */
export function abandonedLine(why: string, left: Unfinished): string {
  const byQueue = new Map<string, number>();
  for (const j of left.jobs) byQueue.set(j.queue, (byQueue.get(j.queue) ?? 0) + 1);
  const jobs = [...byQueue].map(([queue, n]) => `${n} ${queue}`).join(', ');
  if (left.requests === 0 && left.jobs.length === 0) return `${why}; exiting with nothing in flight (no request unanswered, no job running).`;
  return (
    `${why}; exiting with ${left.requests} HTTP request(s) unanswered (their connections closed) and ${left.jobs.length} job(s) running${jobs === '' ? '' : ` (${jobs})`}. ` +
    'Recovery: the jobs stay in Redis and are run again by a countersign process once their lock runs out; ' +
    'an execution already claimed is not sent again: the execution sweep settles it failed, outcome unknown, after its deadline (executor timeout + lease margin).'
  );
}

/**
 * Runs the server until SIGTERM or SIGINT, then stops it (Running.stop) and exits the process:
 * 0 when nothing was left, 1 when SHUTDOWN_TIMEOUT cut something (one line says what), and at
 * once on a second signal. Exits itself: a library's reconnecting socket must not keep it alive.
 */
export async function serveUntilSignalled(env: Env, io: Io, options: StartOptions = {}, started?: (running: Running) => void): Promise<never> {
  const running = await start(env, options);
  started?.(running);
  const exit = (code: number): never => process.exit(code);
  const code = await new Promise<number>((resolve) => {
    const again = (signal: 'SIGINT' | 'SIGTERM') => {
      io.err(abandonedLine(`second signal (${signal}): not waiting`, running.unfinished()));
      exit(EXIT_CODES.secondSignal[signal]);
    };
    const stop = (signal: 'SIGINT' | 'SIGTERM') => {
      io.err(`${signal}: stopping (at most ${running.shutdownTimeoutMs / 1000}s; send it again to exit at once)…`);
      // stop() keeps within the timeout; this is for a step that does not.
      const backstop = setTimeout(() => {
        io.err(abandonedLine(`SHUTDOWN_TIMEOUT (${running.shutdownTimeoutMs / 1000}s) reached`, running.unfinished()));
        resolve(EXIT_CODES.forced);
      }, running.shutdownTimeoutMs);
      running.stop().then(
        (left) => {
          clearTimeout(backstop);
          if (left.requests === 0 && left.jobs.length === 0) {
            io.err('stopped');
            resolve(EXIT_CODES.clean);
          } else {
            io.err(abandonedLine(`SHUTDOWN_TIMEOUT (${running.shutdownTimeoutMs / 1000}s) reached`, left));
            resolve(EXIT_CODES.forced);
          }
        },
        (e: unknown) => {
          clearTimeout(backstop);
          io.err(abandonedLine(`error while stopping (${(e as Error).message})`, running.unfinished()));
          resolve(EXIT_CODES.forced);
        },
      );
    };
    // One listener for both, kept to the end: removing it would let a signal in between kill the process.
    let stopping = false;
    const onSignal = (signal: 'SIGINT' | 'SIGTERM') => {
      if (stopping) return again(signal);
      stopping = true;
      stop(signal);
    };
    process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  });
  return exit(code);
}

async function runRevoke(flags: Flags, env: Env, io: Io): Promise<number> {
  const agent = flags.string('agent');
  if (agent === undefined) throw usage('revoke needs --agent ID');
  io.err(`revoking agent ${agent}…`);
  const r = await revokeAgent(env, agent);
  io.out(`revoked agent ${r.agent}: ${r.tokens_revoked} token(s) revoked, ${r.cancelled.length} proposal(s) cancelled`);
  io.out(`  its new proposals are refused (403 agent_revoked) until: countersign restore --agent ${r.agent}`);
  if (!r.in_policy) io.out(`  ${r.agent} is not in the policy in force: what it left pending or approved was stopped all the same`);
  for (const id of r.cancelled) io.out(`  cancelled ${id}`);
  for (const id of r.still_executing) io.out(`  still executing (its token is revoked; check the target system): ${id}`);
  return 0;
}

async function runRestore(flags: Flags, env: Env, io: Io): Promise<number> {
  const agent = flags.string('agent');
  if (agent === undefined) throw usage('restore needs --agent ID');
  io.err(`restoring agent ${agent}…`);
  const r = await restoreAgent(env, agent);
  const notInPolicy = `  ${r.agent} is not in the policy in force: it cannot sign in until the policy names it again`;
  if (!r.restored) {
    io.out(`agent ${r.agent} is not revoked: nothing changed`);
    if (!r.in_policy) io.out(notInPolicy);
    return 0;
  }
  io.out(`restored agent ${r.agent}: it may propose again (revoked at ${r.revoked_at ?? '?'}, restored at ${r.restored_at ?? '?'})`);
  io.out('  cancelled proposals stay cancelled and revoked tokens stay revoked; proposals made before the revocation never get a token');
  if (!r.in_policy) io.out(notInPolicy);
  for (const id of r.cancelled) io.out(`  cancelled ${id} (left pending by the revocation)`);
  return 0;
}

async function dispatch(args: string[], env: Env, io: Io): Promise<number> {
  const [command, sub, ...rest] = args;
  const flags = (allowed: readonly string[], from = rest) => new Flags(from, allowed);
  switch (command) {
    case undefined:
    case 'start':
      return serveUntilSignalled(env, io, { signInLinks: true });
    case 'demo':
      return runDemo(flags(AGENT_FLAGS, args.slice(1)), env, io);
    case 'propose': {
      const f = flags([...AGENT_FLAGS, 'wait'], args.slice(1));
      const file = f.positionals[0];
      if (file === undefined) throw usage('propose needs a JSON file: countersign propose proposal.json');
      return runPropose(file, f, env, io);
    }
    case 'policy': {
      if (sub === 'check' && rest[0] !== undefined) return runPolicyCheck(rest[0], env, io);
      if (sub === 'test') {
        const f = flags(['agent', 'json']);
        const [file, proposal] = f.positionals;
        if (file === undefined || proposal === undefined) throw usage('policy test needs FILE and PROPOSAL.json');
        return runPolicyTest(file, proposal, f, env, io);
      }
      if (sub === 'replay') {
        const f = flags(['since', 'until', 'json']);
        const file = f.positionals[0];
        if (file === undefined) throw usage('policy replay needs FILE');
        return runPolicyReplay(file, f, env, io);
      }
      break;
    }
    case 'audit':
      if (sub === 'verify') return runAuditVerify(flags(AUDIT_VERIFY_FLAGS), env, io);
      if (sub === 'export') {
        const stop = new AbortController();
        const abort = () => stop.abort();
        process.once('SIGINT', abort).once('SIGTERM', abort);
        try {
          return await runAuditExport(flags(AUDIT_EXPORT_FLAGS), env, io, stop.signal);
        } finally {
          process.off('SIGINT', abort).off('SIGTERM', abort);
        }
      }
      if (sub === 'search') return runAuditSearch(flags(AUDIT_SEARCH_FLAGS), env, io);
      break;
    case 'revoke':
      return runRevoke(flags(['agent'], args.slice(1)), env, io);
    case 'restore':
      return runRestore(flags(['agent'], args.slice(1)), env, io);
    case 'console':
      if (sub === 'link') {
        const person = rest[0] ?? 'demo';
        io.out(await consoleSignInLink(env, person));
        io.err(`one-time link for "${person}": it works once, within 15 minutes`);
        return 0;
      }
      break;
    case 'help':
    case '--help':
    case '-h':
      io.out(USAGE);
      return 0;
  }
  io.err(USAGE);
  return 2;
}

/** What a person at a terminal should read for an expected failure; null for a bug (rethrown). */
function explain(e: unknown): string | null {
  if (e instanceof CountersignError || e instanceof CountersignApiError || e instanceof SyntaxError) return e.message;
  if (!(e instanceof Error)) return null;
  const code = (e as NodeJS.ErrnoException).code ?? (e.cause as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ECONNREFUSED') return 'cannot reach the server (is it running? start it with `npm start`, or pass --url)';
  if (code === 'ENOENT' || code === 'EACCES' || /redis-server is not installed/.test(e.message)) return e.message;
  return null;
}

export async function runCli(args: string[], env: Env, io: Io = terminal): Promise<number> {
  try {
    return await dispatch(args, env, io);
  } catch (e) {
    const message = explain(e);
    if (message === null) throw e;
    io.err(`countersign: ${message}`);
    return e instanceof ValidationError && e.issues[0]?.code === 'usage' ? 2 : 1;
  }
}
