import { truncate } from '../core/card.ts';
import { iso } from '../core/clock.ts';
import { auditEvent } from '../core/audit.ts';
import type { ChannelBinding } from '../core/ports.ts';
import type { PlatformId } from '../core/platform.ts';
import type { AppDeps } from './deps.ts';

// `connect <route>` written in a channel: a member of the policy's admins group binds the
// channel to a route, so the route's cards go there (for platforms whose routes name a key to
// bind, not the channel itself: Teams). Every attempt is audited, refusals too.

/** The policy group whose members may bind channels (and revoke agents). */
export const ADMINS_GROUP = 'admins';

export interface BindHere {
  /** The platform's name as people know it ("Teams"), for the answers. */
  platformName: string;
  /** The channel's id on the platform; null when the command was not written in a channel. */
  conversation: string | null;
  /** What else the platform needs to reach the channel later (Teams: service URL, tenant). */
  details: Record<string, string | null>;
  /** Binds the route's key to this channel, in the platform's own store. */
  bind(key: string, binding: ChannelBinding): Promise<void>;
}

export interface BindRequest {
  platform: PlatformId;
  user: string;
  person: string | null;
  route: string | undefined;
  here: BindHere;
}

/** Binds and returns what to answer in the channel. */
export async function bindChannel(deps: Pick<AppDeps, 'policy' | 'audit' | 'clock'>, req: BindRequest): Promise<string> {
  const at = iso(deps.clock.now());
  const route = truncate(req.route ?? '', 100);
  const refuse = async (actor: string, why: 'not_an_admin' | 'unknown_person') =>
    deps.audit.append([
      auditEvent('channel_bind_refused', { at, proposal_id: null, agent: null, actor }, { platform: req.platform, route, conversation: req.here.conversation, why }),
    ]);
  if (req.person === null) {
    await refuse(`${req.platform}:${req.user.slice(0, 64)}`, 'unknown_person');
    return 'Only people listed in the countersign policy may use countersign here.';
  }
  if (!deps.policy.isMember(ADMINS_GROUP, req.person)) {
    await refuse(`person:${req.person}`, 'not_an_admin');
    return `Only members of the policy's "${ADMINS_GROUP}" group may connect a channel to a route.`;
  }
  if (req.route === undefined) return 'Say which route: connect <route>.';
  if (req.here.conversation === null) return `Write connect <route> in the ${req.here.platformName} channel that should receive the cards.`;
  // The route's name or its key on this platform both name it; the binding is stored under the key.
  const spec = [...deps.policy.channels.values()].find((c) => {
    const t = c.targets.get(req.platform);
    return t !== undefined && (c.route === req.route || t.target === req.route);
  });
  const target = spec?.targets.get(req.platform);
  if (spec === undefined || target === undefined) return `No route "${route}" posts to ${req.here.platformName} in the policy.`;
  if (target.bindable !== true) return `Route "${spec.route}" has its ${req.here.platformName} channel fixed in the policy; change it there.`;
  const conversation = req.here.conversation;
  await req.here.bind(target.target, { conversation, ...req.here.details, boundBy: req.person, at });
  await deps.audit.append([
    auditEvent('channel_bound', { at, proposal_id: null, agent: null, actor: `person:${req.person}` }, { platform: req.platform, route: spec.route, key: target.target, conversation, ...req.here.details }),
  ]);
  return `This channel now receives the approval cards of route "${spec.route}" (connected by ${req.person}).`;
}
