// A pass-through stream that shows each chunk to `see` (hashing, counting) on its way.
import { Transform } from 'node:stream';

export function tap(see: (chunk: Buffer) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      see(chunk);
      callback(null, chunk);
    },
  });
}
