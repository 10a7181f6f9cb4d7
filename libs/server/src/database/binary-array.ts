/**
 * A `bytea[]` query parameter in Postgres's binary array format (what `array_send` writes and
 * `array_recv` reads), so that node-postgres sends it as one binary parameter instead of an array
 * literal of hex strings: no hex encoding here, no hex decoding in the server, half the bytes on the wire.
 * The statement must give the parameter its type (`$1::bytea[]`).
 */
const BYTEA_OID = 17;

export function byteaArray(values: readonly Uint8Array[]): Buffer {
  let size = 20;
  for (const v of values) size += 4 + v.byteLength;
  const out = Buffer.allocUnsafe(size);
  out.writeInt32BE(1, 0); // dimensions
  out.writeInt32BE(0, 4); // no NULL elements
  out.writeUInt32BE(BYTEA_OID, 8);
  out.writeInt32BE(values.length, 12);
  out.writeInt32BE(1, 16); // lower bound
  let at = 20;
  for (const v of values) {
    out.writeInt32BE(v.byteLength, at);
    out.set(v, at + 4);
    at += 4 + v.byteLength;
  }
  return out;
}
