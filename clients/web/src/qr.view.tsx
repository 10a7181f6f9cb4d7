import { useMemo } from 'preact/hooks';
import { encode } from 'uqr';

/** The dark modules of a QR code as one SVG path, one unit square per module (quiet zone included). */
export function qrPath(text: string): { size: number; d: string } {
  const qr = encode(text, { ecc: 'M', border: 4 });
  let d = '';
  qr.data.forEach((row, y) =>
    row.forEach((dark, x) => {
      if (dark) d += `M${x} ${y}h1v1h-1z`;
    }),
  );
  return { size: qr.size, d };
}

/** A QR code drawn client-side as SVG elements (no innerHTML, no inline styles: the page's CSP allows neither). */
export function QrCode({ text, label, testId }: { text: string; label: string; testId: string }) {
  const { size, d } = useMemo(() => qrPath(text), [text]);
  return (
    <svg class="qr" data-testid={testId} data-payload={text} viewBox={`0 0 ${size} ${size}`} role="img" aria-label={label} shape-rendering="crispEdges">
      <rect width={size} height={size} fill="#fff" />
      <path d={d} fill="#000" />
    </svg>
  );
}
