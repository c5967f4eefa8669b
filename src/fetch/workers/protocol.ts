// The messages between the fetch's hashing workers and the threads that start them.
import type { HashAlgorithm } from '../../repository/digest.js';

/** A worker's failure, with the errno code and syscall carried over (a full disk is the store's failure, not the source's). */
export interface WorkerFailure {
  error: string;
  code?: string;
  syscall?: string;
}

export function workerFailure(error: unknown): WorkerFailure {
  const { message, code, syscall } = error as NodeJS.ErrnoException;
  return { error: String(message), ...(code ? { code } : {}), ...(syscall ? { syscall } : {}) };
}

/** The Error a failure message becomes on the starting thread. */
export function failureError(what: string, failure: WorkerFailure): Error {
  return Object.assign(new Error(`${what}: ${failure.error}`), { code: failure.code, syscall: failure.syscall });
}

/** hash-batches: batches of bytes in (each transferred back once hashed), null for the digest. */
export interface BatchesData {
  algorithm: HashAlgorithm;
}
export type BatchesReply = { done: Uint8Array } | { hex: string };

/** hash-behind: a file being written; the final size is posted once its writer is done. */
export interface BehindData {
  path: string;
  algorithm: HashAlgorithm;
}
export type BehindReply = { hex: string } | WorkerFailure;

/** fifo-sink: a FIFO to read, the open file to write sparse, the most bytes to accept. */
export interface FifoData {
  fifo: string;
  fd: number;
  algorithm: HashAlgorithm;
  limit: number;
}
export type FifoReply = { ready: true } | { hex: string; size: number } | { tooLarge: number } | WorkerFailure;
