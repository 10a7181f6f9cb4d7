import type pg from 'pg';
import type { DataSource } from 'typeorm';

export interface PlanNode {
  'Node Type'?: string;
  'Relation Name'?: string;
  'Actual Loops'?: number;
  Plans?: PlanNode[];
}

export interface ExecutedPlan {
  queryText: string;
  plan: PlanNode;
}

const AUTO_EXPLAIN = [
  "LOAD 'auto_explain'",
  'SET LOCAL auto_explain.log_min_duration = 0',
  'SET LOCAL auto_explain.log_analyze = on',
  'SET LOCAL auto_explain.log_nested_statements = on',
  'SET LOCAL auto_explain.log_format = json',
  'SET LOCAL auto_explain.log_level = notice',
];

/** auto_explain's notices on this client, as plans (statements run inside functions included). */
export function collectPlans(client: pg.ClientBase): { plans: ExecutedPlan[]; stop: () => void } {
  const plans: ExecutedPlan[] = [];
  const onNotice = (n: { message?: string }) => {
    const at = n.message?.indexOf('plan:') ?? -1;
    if (at < 0) return;
    const parsed = JSON.parse(n.message!.slice(at + 'plan:'.length)) as { 'Query Text': string; Plan: PlanNode };
    plans.push({ queryText: parsed['Query Text'], plan: parsed.Plan });
  };
  client.on('notice', onNotice);
  return { plans, stop: () => client.removeListener('notice', onNotice) };
}

/** Turns auto_explain on for the rest of this client's transaction (the caller has begun one). */
export async function explainEverything(client: { query: (sql: string) => Promise<unknown> }): Promise<void> {
  for (const sql of AUTO_EXPLAIN) await client.query(sql);
}

/**
 * Runs `sql` once in a rolled-back transaction with auto_explain on, and returns the plans it
 * executed: its own and those of the statements inside any function it calls.
 */
export async function executedPlans(ds: DataSource, sql: string, params?: unknown[]): Promise<ExecutedPlan[]> {
  const runner = ds.createQueryRunner();
  await runner.connect();
  const client = (runner as unknown as { databaseConnection: pg.ClientBase }).databaseConnection;
  const seen = collectPlans(client);
  try {
    await runner.startTransaction();
    await explainEverything(runner);
    await runner.query(sql, params);
    // Notices arrive before the statement's completion; one more round trip makes sure all were read.
    await runner.query('SELECT 1');
  } finally {
    seen.stop();
    await runner.rollbackTransaction();
    await runner.release();
  }
  // auto_explain plans no utility statement (LOAD, SET); only the round trip above is not the caller's.
  return seen.plans.filter((p) => p.queryText.trim() !== 'SELECT 1');
}

/** Every node of a plan. */
export function planNodes(plan: PlanNode): PlanNode[] {
  const out: PlanNode[] = [];
  const walk = (n: PlanNode) => {
    out.push(n);
    for (const c of n.Plans ?? []) walk(c);
  };
  walk(plan);
  return out;
}

/** The envelope partitions a plan actually read (nodes pruned at plan time are absent, at run time never executed). */
export function partitionsRead(plan: PlanNode): Set<string> {
  return new Set(
    planNodes(plan)
      .filter((n) => n['Relation Name']?.startsWith('envelopes_p') && (n['Actual Loops'] ?? 0) > 0)
      .map((n) => n['Relation Name']!),
  );
}
