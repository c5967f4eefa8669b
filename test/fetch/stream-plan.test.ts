// The stream plan over every combination of its inputs (pure): which decoder route, hasher and decoder output.
import { describe, expect, it } from 'vitest';
import { planStream, type StreamInputs, type StreamPlan } from '../../src/fetch/stream-plan.js';

const bools = [false, true];
/** Every combination of the inputs, a decoder only when compressed: 64 plain, 128 compressed. */
function everyInput(): StreamInputs[] {
  const out: StreamInputs[] = [];
  for (const compressed of bools)
    for (const decoder of compressed ? (['process', 'lzma-native'] as const) : [undefined])
      for (const verifies of ['image', 'compressed'] as const)
        for (const resumed of bools)
          for (const small of bools)
            for (const kept of bools)
              for (const fifo of bools)
                for (const decodeBehind of bools)
                  out.push({
                    compressed,
                    ...(decoder ? { decoder } : {}),
                    verifies,
                    resumed,
                    small,
                    kept,
                    fifo,
                    decodeBehind,
                  });
  return out;
}

describe('planStream', () => {
  it.each([
    // name, inputs (on top of the defaults), plan
    ['plain, hashed on a worker as it passes', {}, { route: 'plain', hashing: 'parallel' }],
    ['plain and small: on this thread', { small: true }, { route: 'plain', hashing: 'inline' }],
    [
      'plain and resumed: the file from its start',
      { resumed: true, small: true },
      { route: 'plain', hashing: 'follow-output' },
    ],
    [
      'xz, lago (image digest): the FIFO, else a pipe',
      { compressed: true, decoder: 'process', fifo: true },
      {
        route: 'decoder',
        hashing: 'fifo',
        decoderWrites: 'fifo',
        fallback: { route: 'decoder', hashing: 'parallel', hashes: 'decoded', decoderWrites: 'pipe' },
      },
    ],
    [
      'xz, lago, FIFOs off',
      { compressed: true, decoder: 'process' },
      { route: 'decoder', hashing: 'parallel', hashes: 'decoded', decoderWrites: 'pipe' },
    ],
    [
      'xz with compressed_hash, kept for resume: the kept file followed, the decoder writes the image',
      { compressed: true, decoder: 'process', verifies: 'compressed', kept: true, fifo: true },
      { route: 'decoder', hashing: 'follow-kept', decoderWrites: 'file' },
    ],
    [
      '.zst, small: hashed on this thread before the decoder',
      { compressed: true, decoder: 'process', verifies: 'compressed', kept: true, small: true },
      { route: 'decoder', hashing: 'inline', hashes: 'compressed', decoderWrites: 'file' },
    ],
    [
      'a cache host: the decoder follows the kept file',
      { compressed: true, decoder: 'process', verifies: 'compressed', kept: true, decodeBehind: true },
      { route: 'decode-behind', hashing: 'follow-kept', decoderWrites: 'file' },
    ],
    [
      'lzma-native, image digest: after the decoder, never a FIFO',
      { compressed: true, decoder: 'lzma-native', fifo: true },
      { route: 'lzma-native', hashing: 'parallel', hashes: 'decoded' },
    ],
  ] as const)('%s', (_name, given, plan) => {
    const defaults: StreamInputs = {
      compressed: false,
      verifies: 'image',
      resumed: false,
      small: false,
      kept: false,
      fifo: false,
      decodeBehind: false,
    };
    expect(planStream({ ...defaults, ...(given as Partial<StreamInputs>) })).toEqual(plan as StreamPlan);
  });

  it('keeps its rules over the whole matrix', () => {
    const inputs = everyInput();
    expect(inputs).toHaveLength(64 + 128);
    for (const input of inputs) {
      const plan = planStream(input);
      const why = JSON.stringify(input);
      const plans = plan.fallback ? [plan, plan.fallback] : [plan];
      for (const p of plans) {
        // A stream hasher says which bytes it sees; the others do not.
        expect(p.hashes !== undefined, why).toBe(
          p.hashing === 'inline' || p.hashing === 'parallel' ? input.compressed : false,
        );
        // Only a kept compressed file can be followed, and only the image when it is the plain output.
        if (p.hashing === 'follow-kept') expect(input.kept && input.verifies === 'compressed', why).toBe(true);
        if (p.hashing === 'follow-output') expect(!input.compressed && input.resumed, why).toBe(true);
        // The fast paths hash the compressed bytes; the image's digest is never read back from the sparse output.
        if (p.hashes === 'compressed') expect(input.verifies, why).toBe('compressed');
        if (input.compressed && input.verifies === 'image') expect(['fifo', 'parallel'], why).toContain(p.hashing);
        // A decoder process writes the image itself on the fast paths, a FIFO or pipe otherwise; lzma-native none.
        if (input.decoder === 'process')
          expect(p.decoderWrites, why).toBe(
            input.verifies === 'compressed' ? 'file' : p === plan && input.fifo ? 'fifo' : 'pipe',
          );
        else expect(p.decoderWrites, why).toBeUndefined();
        // The decoder follows the kept file only on a cache host with one, and only as a process.
        expect(p.route === 'decode-behind', why).toBe(input.decoder === 'process' && input.decodeBehind && input.kept);
      }
      // A FIFO always has its fallback, a pipe.
      expect(plan.fallback !== undefined, why).toBe(plan.hashing === 'fifo');
      if (plan.fallback) expect(plan.fallback.decoderWrites, why).toBe('pipe');
    }
  });
});
