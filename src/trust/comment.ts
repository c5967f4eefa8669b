// The trusted comment of our repository signatures (pure): signing time, file, repository name and revision, tab-separated.

export interface CommentFacts {
  /** Seconds since the epoch. */
  timestamp?: number;
  file?: string;
  repository?: string;
  revision?: number;
}

/** minisign's own fields (`timestamp:T file:F hashed`), then ours. */
export function formatComment(facts: Required<Pick<CommentFacts, 'timestamp' | 'file'>> & CommentFacts): string {
  const fields = [`timestamp:${facts.timestamp}`, `file:${facts.file.replace(/[\t\r\n]/g, ' ')}`, 'hashed'];
  if (facts.repository !== undefined) fields.push(`repository:${facts.repository}`);
  if (facts.revision !== undefined) fields.push(`revision:${facts.revision}`);
  return fields.join('\t');
}

/** What a trusted comment says; fields it lacks (minisign's default has no repository) are absent. */
export function parseComment(text: string): CommentFacts {
  const facts: CommentFacts = {};
  for (const field of text.split('\t')) {
    const at = field.indexOf(':');
    if (at <= 0) continue;
    const key = field.slice(0, at);
    const value = field.slice(at + 1);
    if (key === 'timestamp' && /^\d+$/.test(value)) facts.timestamp = Number(value);
    else if (key === 'file') facts.file = value;
    else if (key === 'repository') facts.repository = value;
    else if (key === 'revision' && /^\d+$/.test(value)) facts.revision = Number(value);
  }
  return facts;
}
