import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import net from 'node:net';
import { TEST_DATABASE_URL, TEST_REDIS_URL, waitFor } from '../support/harness';
import { readRepoFile, repoPath } from './support';

interface NestProject {
  type: 'application' | 'library';
  root: string;
  sourceRoot: string;
  entryFile: string;
  compilerOptions?: { tsConfigPath?: string };
}
const nest = JSON.parse(readRepoFile('nest-cli.json')) as { monorepo: boolean; compilerOptions: { builder: string; tsConfigPath: string }; projects: Record<string, NestProject> };

const namesOf = (type: NestProject['type']) =>
  Object.entries(nest.projects)
    .filter(([, p]) => p.type === type)
    .map(([n]) => n)
    .sort();

describe('nest-cli.json (the monorepo layout card)', () => {
  it('is a tsc-built monorepo with one application per services/ folder and one library per libs/ package', () => {
    expect(nest.monorepo).toBe(true);
    expect(nest.compilerOptions.builder).toBe('tsc');
    expect(namesOf('application')).toEqual(readdirSync(repoPath('services')).sort());
    expect(namesOf('library')).toEqual(readdirSync(repoPath('libs')).filter((l) => existsSync(repoPath('libs', l, 'package.json'))).sort());
    for (const [name, p] of Object.entries(nest.projects)) {
      const entry = repoPath(p.sourceRoot, `${p.entryFile}.ts`);
      expect(`${name}: ${entry} exists=${existsSync(entry)}`).toMatch(/exists=true$/);
      expect(existsSync(repoPath(p.compilerOptions?.tsConfigPath ?? nest.compilerOptions.tsConfigPath))).toBe(true);
      expect(p.sourceRoot.startsWith(p.root)).toBe(true);
    }
    const pkg = JSON.parse(readRepoFile('package.json')) as { devDependencies: Record<string, string> };
    expect(pkg.devDependencies['@nestjs/cli']).toBe('12.0.8');
  });

  it('`nest build gateway` produces the entry `nest start gateway` runs, and it serves /readyz', async () => {
    // The libs resolve through their built dist/ (workspaces); npm run build / npm test build them first.
    const build = spawnSync(process.execPath, [repoPath('node_modules', '@nestjs', 'cli', 'bin', 'nest.js'), 'build', 'gateway'], { encoding: 'utf8', cwd: repoPath() });
    expect(`${build.status} ${build.stdout}${build.stderr}`.trim()).toBe('0');
    const entry = repoPath('dist', nest.projects.gateway!.sourceRoot, `${nest.projects.gateway!.entryFile}.js`);
    expect(existsSync(entry)).toBe(true);

    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const child = spawn(process.execPath, [entry], {
      env: { ...process.env, DATABASE_URL: TEST_DATABASE_URL, REDIS_URL: TEST_REDIS_URL, REDIS_PREFIX: `n${port}`, PORT: String(port), HOST: '127.0.0.1', NODE_ENV: 'test' },
      stdio: 'ignore',
    });
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200, 60_000, 'gateway ready');
    } finally {
      const exited = new Promise<number | null>((r) => child.once('exit', r));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  }, 180_000);
});
