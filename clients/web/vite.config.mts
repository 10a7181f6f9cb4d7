import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

// The SDK and what it builds on are compiled from their TypeScript sources (the libs' dist is CommonJS for Node).
export default defineConfig({
  root: here('.'),
  resolve: {
    alias: [{ find: /^@umbra\/(sdk|crypto|protocol)$/, replacement: here('../../libs/$1/src/index.ts') }],
  },
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  worker: { format: 'es' },
  build: {
    // UMBRA_WEB_OUT_DIR: the browser test builds into a folder of its own.
    outDir: process.env.UMBRA_WEB_OUT_DIR ?? here('../../dist/web'),
    emptyOutDir: true,
    target: 'es2023',
    // Every asset is a file of its own: the Content-Security-Policy allows no data: scripts or styles.
    assetsInlineLimit: 0,
  },
});
