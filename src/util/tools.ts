// The external commands templates runs, and the one TOOL_MISSING error that says how to install each.
import { TemplatesError } from '../errors.js';

export type Tool = 'xz' | 'zstd';

const INSTALL: Record<Tool, string> = {
  xz: 'install xz (Debian: apt-get install xz-utils)',
  zstd: 'install zstd (Debian: apt-get install zstd)',
};

/** TOOL_MISSING for `tool`: `message` says what needed it; `alternative` is appended to the install hint ("or …"). */
export function toolMissing(tool: Tool, message: string, alternative?: string, cause?: unknown): TemplatesError {
  return new TemplatesError(
    'TOOL_MISSING',
    message,
    { tool, hint: alternative ? `${INSTALL[tool]}, ${alternative}` : INSTALL[tool] },
    { cause },
  );
}
