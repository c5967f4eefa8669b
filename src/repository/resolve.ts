// Resolve a reference to one version of one template: the named version, or the newest by timestamp.
import { TemplatesError } from '../errors.js';
import { badArgument } from '../util/args.js';
import { RepositorySet } from './set.js';
import type { Repository, TemplateSpec, VersionSpec } from './model.js';
import { parseReference, type VersionKey } from './reference.js';

export interface Resolved {
  /** The fully qualified name `<repo>:<template>:<version>`. */
  ref: string;
  key: VersionKey;
  repository: Repository;
  version: VersionSpec;
}

function pickRepository(parts: string[], set: RepositorySet, text: string): { repository: Repository; rest: string[] } {
  const [first, ...rest] = parts as [string, ...string[]];
  if (parts.length === 3) {
    const repository = set.get(first);
    if (!repository) throw unknownRepository(first, set, text);
    return { repository, rest };
  }
  // Two parts are repo:name when the first names a repository; otherwise name:version with one repository.
  if (parts.length === 2 && set.has(first)) return { repository: set.get(first)!, rest };
  if (set.size === 1) return { repository: set.list()[0]!, rest: parts };
  if (set.size === 0) {
    throw new TemplatesError('NO_REPOSITORIES', 'no repositories are configured', {
      ref: text,
      hint: 'pass --repo FILE|URL or --repos DIR, or set TEMPLATES_REPOS',
    });
  }
  if (parts.length === 2) throw unknownRepository(first, set, text);
  throw new TemplatesError(
    'BAD_REFERENCE',
    `${JSON.stringify(text)} names no repository and ${set.size} are configured`,
    {
      ref: text,
      hint: `write it as repo:${text} (repositories: ${set.names().join(', ')})`,
    },
  );
}

function unknownRepository(name: string, set: RepositorySet, text: string): TemplatesError {
  const known = set.names();
  return new TemplatesError('REPO_NOT_FOUND', `unknown repository "${name}"`, {
    ref: text,
    repository: name,
    hint: known.length
      ? `configured repositories: ${known.join(', ')}`
      : 'no repositories are configured; pass --repo or --repos',
  });
}

function getTemplate(repository: Repository, name: string, text: string): TemplateSpec {
  const entry = repository.templates.get(name);
  if (!entry) {
    throw new TemplatesError('TEMPLATE_NOT_FOUND', `repository "${repository.name}" has no template "${name}"`, {
      ref: text,
      repository: repository.name,
      template: name,
      hint: `see the templates listed in ${repository.location}`,
    });
  }
  if (!entry.ok) throw entry.error;
  return entry.value;
}

/** The newest valid version by timestamp; on a tie the first in the file wins (as lago's max()). */
export function latestVersion(template: TemplateSpec): VersionSpec | undefined {
  let best: VersionSpec | undefined;
  for (const entry of template.versions.values()) {
    if (entry.ok && (best === undefined || entry.value.timestamp > best.timestamp)) best = entry.value;
  }
  return best;
}

function getVersion(
  repository: Repository,
  template: TemplateSpec,
  name: string | undefined,
  text: string,
): VersionSpec {
  const fields = { ref: text, repository: repository.name, template: template.name };
  if (name === undefined) {
    const latest = latestVersion(template);
    if (latest) return latest;
    const firstBroken = [...template.versions.values()].find((entry) => !entry.ok);
    if (firstBroken && !firstBroken.ok) throw firstBroken.error;
    throw new TemplatesError(
      'VERSION_NOT_FOUND',
      `template "${repository.name}:${template.name}" has no versions`,
      fields,
    );
  }
  const entry = template.versions.get(name);
  if (!entry) {
    throw new TemplatesError(
      'VERSION_NOT_FOUND',
      `template "${repository.name}:${template.name}" has no version "${name}"`,
      {
        ...fields,
        version: name,
        hint: `known versions: ${[...template.versions.keys()].join(', ') || 'none'}`,
      },
    );
  }
  if (!entry.ok) throw entry.error;
  return entry.value;
}

export function resolveReference(text: string, repositories: RepositorySet | Repository[]): Resolved {
  if (typeof text !== 'string')
    throw badArgument('resolveReference', 'the reference', 'a string such as "repo:name:version"', text);
  const set = RepositorySet.from(repositories, 'resolveReference');
  const { parts } = parseReference(text);
  const { repository, rest } = pickRepository(parts, set, text);
  const [templateName, versionName] = rest as [string, string | undefined];
  const template = getTemplate(repository, templateName, text);
  const version = getVersion(repository, template, versionName, text);
  const key = { repository: repository.name, template: template.name, version: version.name };
  return { ref: `${key.repository}:${key.template}:${key.version}`, key, repository, version };
}
