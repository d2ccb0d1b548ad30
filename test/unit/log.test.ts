/**
 * src/log.ts: one JSON object per line, allowed fields only, strings capped and redacted, the
 * level of each event; and README "What to watch" describes every event.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { errorKind, LOG_EVENTS, type LogFields, log } from '../../src/log.ts';

const NOW = () => Date.parse('2026-11-30T12:00:00Z');

function capture(): { lines: [string, string][]; restore(): void } {
  const lines: [string, string][] = [];
  const spies = (['log', 'warn', 'error'] as const).map((m) =>
    vi.spyOn(console, m).mockImplementation((...a: unknown[]) => void lines.push([m, a.map(String).join(' ')])),
  );
  return { lines, restore: () => spies.forEach((s) => s.mockRestore()) };
}

afterEach(() => vi.restoreAllMocks());

describe('log', () => {
  it('writes one JSON line: level, event, time, then the fields, on the console method of its level', () => {
    const c = capture();
    log(
      'delivery.attempt',
      { jobId: 'job-1', tenant: 'north', status: 'retrying', attempts: 2, durationMs: 41, retryInSeconds: 30, targets: { clinic: 'retrying' } },
      NOW,
    );
    log('dlq.job_received', { jobId: 'job-2', status: 'marked dead' }, NOW);
    log('config.invalid', { settings: ['API_AUTH', 'FHIR_TARGETS.clinic.baseUrl'] }, NOW);
    c.restore();
    expect(c.lines.map(([m]) => m)).toEqual(['log', 'warn', 'error']);
    for (const [, text] of c.lines) expect(text.includes('\n')).toBe(false);
    expect(JSON.parse(c.lines[0]![1])).toEqual({
      level: 'info',
      event: 'delivery.attempt',
      time: '2026-11-30T12:00:00.000Z',
      jobId: 'job-1',
      tenant: 'north',
      status: 'retrying',
      attempts: 2,
      durationMs: 41,
      retryInSeconds: 30,
      targets: { clinic: 'retrying' },
    });
    expect(Object.keys(JSON.parse(c.lines[0]![1])).slice(0, 3)).toEqual(['level', 'event', 'time']);
    expect(JSON.parse(c.lines[2]![1])).toMatchObject({ level: 'error', settings: ['API_AUTH', 'FHIR_TARGETS.clinic.baseUrl'] });
  });

  it('drops fields it does not know and values of the wrong type, and redacts national ids and phone numbers in strings', () => {
    const c = capture();
    const sneaky = {
      jobId: 'job-3',
      body: '{"parent":{"given":["Kari"]}}',
      message: 'Kari Nordmann 02839440092',
      attempts: 'many',
      durationMs: Number.NaN,
      error: 'Error for 02839440092, tel +47 400 00 000',
      counts: { requeued: 2, note: 'PDI conducted' },
      targets: { clinic: 'failed', 'primary.993778125': 7 },
    } as unknown as LogFields;
    log('queue.attempt_failed', sneaky, NOW);
    log('delivery.attempt_failed', { jobId: 'j', target: 'clinic', error: 'x'.repeat(1000) }, NOW);
    c.restore();
    const o = JSON.parse(c.lines[0]![1]);
    expect(o).toEqual({
      level: 'error',
      event: 'queue.attempt_failed',
      time: '2026-11-30T12:00:00.000Z',
      jobId: 'job-3',
      error: 'Error for [redacted], tel [redacted]',
      counts: { requeued: 2 },
      targets: { clinic: 'failed' },
    });
    expect(c.lines[0]![1]).not.toMatch(/Kari|02839440092|400 00 000|PDI/);
    expect((JSON.parse(c.lines[1]![1]) as { error: string }).error.length).toBeLessThanOrEqual(201);
  });

  it('names an error by its kind, never its message', () => {
    expect(errorKind(new TypeError('fetch failed for 02839440092'))).toBe('TypeError');
    expect(errorKind({ name: 'TargetError', message: 'Kari' })).toBe('TargetError');
    expect(errorKind('Kari Nordmann')).toBe('string');
    expect(errorKind(undefined)).toBe('undefined');
  });
});

describe('README "What to watch"', () => {
  it('describes every event the bridge logs', () => {
    const readme = readFileSync(resolve(import.meta.dirname, '../../README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### What to watch'), readme.indexOf('\n## ', readme.indexOf('### What to watch')));
    expect(section.length).toBeGreaterThan(200);
    const missing = Object.keys(LOG_EVENTS).filter((e) => !section.includes(`\`${e}\``));
    expect(missing).toEqual([]);
  });
});
