// Human-readable lines shared by commands (resolve, info).
import type { Resolution } from '../fetch/describe.js';

const mib = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(1)} MiB`;

/** The resolution as `label: value` lines, labels padded to `width`. */
export function resolutionLines(r: Resolution, width: number): string[] {
  const label = (text: string) => `${text}:`.padEnd(width);
  return [
    `${label('timestamp')}${r.timestamp} (${new Date(r.timestamp * 1000).toISOString()})`,
    `${label('source')}${r.source.name} (${r.source.type})`,
    ...r.urls.map((url, i) => `${i === 0 ? label('urls') : ' '.repeat(width)}${url}`),
    ...r.mirrors.map((url, i) => `${i === 0 ? label('mirrors') : ' '.repeat(width)}${url}`),
    `${label('hash')}${r.hash ?? 'none'}${r.hashFrom ? ` (from the ${r.hashFrom})` : ''}`,
    ...(r.compressedHash ? [`${label('xz hash')}${r.compressedHash}`] : []),
    ...(r.size !== null ? [`${label('size')}${r.size}`] : []),
    ...(r.format ? [`${label('format')}${r.format}`] : []),
    ...(r.delta
      ? [
          `${label('delta')}${r.delta.chosen === 'delta' ? 'taken' : 'not taken: the whole file costs less'}; reuses ${mib(r.delta.reusedBytes)} of stored versions, fetches ${r.delta.fetchedChunks} of ${r.delta.chunks} chunks (${mib(r.delta.fetchedBytes)}, ~${mib(r.delta.estimatedBytes)} on the wire${r.delta.wholeBytes !== null ? ` against the whole .zst's ${mib(r.delta.wholeBytes)}` : ''})`,
        ]
      : []),
    ...(r.signature
      ? [
          `${label('signature')}${
            r.signature.state === 'verified'
              ? `verified, key ${r.signature.keyId}${r.signature.signedAt ? `, signed ${r.signature.signedAt}` : ''}${r.signature.revision !== undefined ? `, revision ${r.signature.revision}` : ''}`
              : 'not checked (no key is trusted for this repository)'
          }`,
        ]
      : []),
  ];
}
