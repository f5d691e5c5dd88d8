import type { Activity } from 'botbuilder';

// A Teams message names people as `<at>Bob</at>` and carries who each is in its mention
// entities. Chat commands (`away until … to <at>Bob</at>`) need the person, not the display
// name: each mention is rewritten to `<@id>` (the Entra object id when the entity carries one),
// the form src/app/away-command.ts reads. A mention with no entity says nothing: it is dropped.

interface MentionEntity {
  type?: string;
  text?: string;
  mentioned?: { id?: string; aadObjectId?: string };
}

export function mentionsAsIds(activity: Pick<Activity, 'entities'>, text: string): string {
  const entities = ((activity.entities ?? []) as MentionEntity[]).filter((e) => e.type === 'mention' && typeof e.text === 'string');
  return text.replace(/<at>[^<]*<\/at>/gi, (tag) => {
    const m = entities.find((e) => e.text === tag)?.mentioned;
    const id = m?.aadObjectId || m?.id;
    return typeof id === 'string' && /^[^\s<>|]{1,100}$/.test(id) ? ` <@${id}> ` : ' ';
  });
}
