/**
 * Typed arrays in shared memory (SharedArrayBuffer): a volume loaded into one can be read by the engine's
 * helper thread (src/bmd/parallel) without a copy. They read and write like any other typed array.
 */
export function sharedInt16(length: number): Int16Array {
  return new Int16Array(new SharedArrayBuffer(length * Int16Array.BYTES_PER_ELEMENT));
}

export function sharedFloat32(length: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(length * Float32Array.BYTES_PER_ELEMENT));
}

export function isShared(a: ArrayBufferView): boolean {
  return a.buffer instanceof SharedArrayBuffer;
}
