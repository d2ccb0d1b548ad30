/** `imh-bridge sync` over NDJSON files and folders: reading, outcomes, progress, summary, exit code. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatDuration, Progress } from '../../src/cli/progress.ts';
import { countEpisodes, exitCode, readEpisodes, resolveSources, type Source, safeEpisodeId, syncFiles } from '../../src/cli/sync-files.ts';
import { OperationOutcomeError } from '../../src/fhir/outcome.ts';
import type { SyncResult } from '../../src/sync/sync-once.ts';
import { completed } from '../fixtures/examples.ts';

const tmp = mkdtempSync(join(tmpdir(), 'imh-sync-files-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const write = (name: string, text: string) => {
  const path = join(tmp, name);
  writeFileSync(path, text);
  return path;
};

/** A SyncResult as syncOnce gives it, for one clinic target. */
function result(status: 'delivered' | 'failed' | 'dead', counts?: { created: number; updated: number; unchanged: number }, error?: string): SyncResult {
  const r = { status, ...(counts ? { counts, written: counts.created + counts.updated } : {}), ...(error ? { error } : {}) } as SyncResult['report']['result'];
  return {
    delivered: status === 'delivered',
    report: { episode: 'x', status, attempts: 1, target: 'http://t', result: r, targets: { clinic: { url: 'http://t', result: r } }, audits: [] },
  };
}

const collect = () => {
  let text = '';
  return { stderr: { write: (t: string) => void (text += t), isTTY: false }, text: () => text };
};

describe('reading episodes', () => {
  it("takes a folder's .json and .ndjson files sorted by name, not its subfolders or other files", async () => {
    const dir = join(tmp, 'folder');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(join(dir, 'b.ndjson'), '{}\n');
    writeFileSync(join(dir, 'a.json'), '{}');
    writeFileSync(join(dir, 'notes.txt'), 'x');
    writeFileSync(join(dir, 'sub', 'c.json'), '{}');
    expect(await resolveSources([dir])).toEqual([
      { path: join(dir, 'a.json'), kind: 'json' },
      { path: join(dir, 'b.ndjson'), kind: 'ndjson' },
    ]);
    await expect(resolveSources([join(tmp, 'missing')])).rejects.toThrow(/cannot read .*missing: ENOENT/);
    await expect(resolveSources([join(dir, 'sub', 'c.json'), '-'])).rejects.toThrow(/standard input/);
  });

  it('counts one episode per non-blank NDJSON line and names each by file:line; a bad line does not stop the rest', async () => {
    const e = completed();
    const file = write('mixed.ndjson', `${JSON.stringify(e)}\n\n   \n{"episodeId": "VG-1", \n${JSON.stringify({ episodeId: 'VG-2' })}\r\n{"episodeId":"VG-3"}`);
    const sources: Source[] = [{ path: file, kind: 'ndjson' }];
    expect(await countEpisodes(sources)).toBe(4);
    const items = [];
    for await (const item of readEpisodes(sources)) items.push(item);
    expect(items.map((i) => i.where)).toEqual([`${file}:1`, `${file}:4`, `${file}:5`, `${file}:6`]);
    expect(items[1]).toEqual({ where: `${file}:4`, unreadable: expect.stringMatching(/^not valid JSON/) });
    expect(items[2]?.input).toEqual({ episodeId: 'VG-2' });
    expect(items[3]?.input).toEqual({ episodeId: 'VG-3' });
  });

  it("shows an episodeId only when it is no person's number", () => {
    expect(safeEpisodeId({ episodeId: 'VG-2026-0042' })).toBe('VG-2026-0042');
    expect(safeEpisodeId({ episodeId: completed().parent.nationalId })).toBeUndefined();
    expect(safeEpisodeId({ episodeId: 'ep-40000000' })).toBeUndefined();
    expect(safeEpisodeId({ episodeId: 'with space' })).toBeUndefined();
    expect(safeEpisodeId('text')).toBeUndefined();
  });
});

describe('syncFiles', () => {
  it('delivers with at most `concurrency` episodes in flight, reading as it goes', async () => {
    const lines = Array.from({ length: 60 }, (_, i) => JSON.stringify({ episodeId: `VG-${i}` })).join('\n');
    const file = write('many.ndjson', lines);
    let inFlight = 0;
    let most = 0;
    const seen: string[] = [];
    const out = collect();
    const { summary, exitCode: code } = await syncFiles({
      sources: [{ path: file, kind: 'ndjson' }],
      concurrency: 3,
      stderr: out.stderr,
      deliver: async (input) => {
        inFlight++;
        most = Math.max(most, inFlight);
        seen.push((input as { episodeId: string }).episodeId);
        await new Promise((r) => setTimeout(r, 2));
        inFlight--;
        return result('delivered', { created: 2, updated: 1, unchanged: 0 });
      },
    });
    expect(most).toBe(3);
    expect(new Set(seen).size).toBe(60);
    expect(summary.outcomes.delivered).toBe(60);
    expect(summary.resources).toEqual({ created: 120, updated: 60, unchanged: 0 });
    expect(code).toBe(0);
    expect(out.text()).toMatch(/^sync: 60 of 60 episodes in [\d.]+ s/m);
  });

  it('counts each outcome, names failures by file:line without patient data, and exits 1 when a server refused or failed', async () => {
    const e = completed();
    const { nationalId, given, family, phone } = e.parent;
    const personal = { ...e, episodeId: nationalId };
    const file = write(
      'outcomes.ndjson',
      [
        JSON.stringify({ ...e, episodeId: 'VG-OK' }),
        JSON.stringify({ ...e, episodeId: 'VG-SAME' }),
        // A line cut off in the middle of the parent: the JSON error must not quote it.
        JSON.stringify(e).slice(0, 200),
        JSON.stringify({ ...e, episodeId: 'VG-BAD' }),
        JSON.stringify({ ...e, episodeId: 'VG-REFUSED' }),
        JSON.stringify(personal),
      ].join('\n'),
    );
    const out = collect();
    const { summary, exitCode: code } = await syncFiles({
      sources: [{ path: file, kind: 'ndjson' }],
      concurrency: 2,
      stderr: out.stderr,
      deliver: async (input) => {
        const id = (input as { episodeId: string }).episodeId;
        if (id === 'VG-OK') return result('delivered', { created: 5, updated: 0, unchanged: 0 });
        if (id === 'VG-SAME') return result('delivered', { created: 0, updated: 0, unchanged: 5 });
        if (id === 'VG-BAD') {
          throw new OperationOutcomeError(
            {
              resourceType: 'OperationOutcome',
              issue: [
                { severity: 'error', code: 'value', details: { text: `parent.nationalId ${nationalId} is wrong` } },
                { severity: 'error', code: 'value' },
              ],
            },
            400,
          );
        }
        if (id === 'VG-REFUSED') return result('failed', undefined, 'POST (transaction): HTTP 412');
        return result('dead', undefined, `POST (transaction): connection failed (ECONNREFUSED 127.0.0.1:9)`);
      },
    });
    expect(summary.outcomes).toEqual({ delivered: 1, unchanged: 1, unreadable: 1, invalid: 1, refused: 1, failed: 1, skipped: 0 });
    expect(code).toBe(1);
    expect(summary.failures.map((f) => [f.where.slice(file.length), f.episode, f.outcome])).toEqual([
      [':3', undefined, 'unreadable'],
      [':4', 'VG-BAD', 'invalid'],
      [':5', 'VG-REFUSED', 'refused'],
      [':6', undefined, 'failed'],
    ]);
    expect(out.text()).toContain(`${file}:5 (episode VG-REFUSED): refused by the server: clinic: POST (transaction): HTTP 412`);
    expect(out.text()).toContain(`${file}:4 (episode VG-BAD): refused by validation (not a valid episode): parent.nationalId [redacted] is wrong (and 1 more)`);
    expect(out.text()).toMatch(/^ {2}refused by the server\s+1$/m);
    expect(out.text()).toMatch(/^ {2}unchanged \(the server already held it\)\s+1$/m);
    const everything = out.text() + JSON.stringify(summary);
    for (const term of [nationalId, ...given, family, phone, e.parent.birthDate]) expect(everything).not.toContain(term);
  });

  it('exits 2 when only episodes that could not be read or were invalid failed', async () => {
    expect(exitCode({ outcomes: { delivered: 3, unchanged: 0, unreadable: 1, invalid: 1, refused: 0, failed: 0, skipped: 0 } })).toBe(2);
    expect(exitCode({ outcomes: { delivered: 3, unchanged: 2, unreadable: 0, invalid: 0, refused: 0, failed: 0, skipped: 0 } })).toBe(0);
  });

  it('stops starting episodes after five in a row failed at the server, and counts the rest as not attempted', async () => {
    const file = write('dead.ndjson', Array.from({ length: 40 }, (_, i) => JSON.stringify({ episodeId: `VG-${i}` })).join('\n'));
    let calls = 0;
    const out = collect();
    const { summary, exitCode: code } = await syncFiles({
      sources: [{ path: file, kind: 'ndjson' }],
      concurrency: 1,
      stderr: out.stderr,
      deliver: async () => {
        calls++;
        return result('dead', undefined, 'connection failed (ECONNREFUSED 127.0.0.1:9)');
      },
    });
    expect(calls).toBe(5);
    expect(summary.outcomes).toMatchObject({ failed: 5, skipped: 35 });
    expect(summary.stopped).toMatch(/5 episodes in a row failed/);
    expect(code).toBe(1);
    expect(out.text()).toMatch(/not attempted \(the server kept failing\)\s+35/);
  });
});

describe('progress line', () => {
  it('on a terminal: one line rewritten in place, throttled, with rate, time left and failures', () => {
    let t = 0;
    let text = '';
    const p = new Progress(100, { write: (s) => void (text += s), tty: true, now: () => t, ttyIntervalMs: 200 });
    t = 1000;
    p.tick(false);
    t = 1100;
    p.tick(true); // within 200 ms: not drawn
    t = 2000;
    p.tick(false);
    expect(text.split('\r\x1b[K').filter(Boolean)).toEqual([
      '1 of 100 episodes (1.0 %), 1.0/s, about 1 min 39 s left, 0 failed',
      '3 of 100 episodes (3.0 %), 1.5/s, about 1 min 05 s left, 1 failed',
    ]);
    // A failure's line comes at once, and the progress line after it already counts it.
    t = 2050;
    p.tick(true, 'a.ndjson:7: refused by the server: HTTP 412');
    expect(text).toContain('\r\x1b[Ka.ndjson:7: refused by the server: HTTP 412\n\r\x1b[K4 of 100 episodes (4.0 %), 2.0/s, about 49 s left, 2 failed');
    p.finish();
    expect(text.endsWith('\n')).toBe(true);
  });

  it('elsewhere: a plain line every interval, none for a short run', () => {
    let t = 0;
    const lines: string[] = [];
    const p = new Progress(10, { write: (s) => void lines.push(s), tty: false, now: () => t, lineIntervalMs: 10_000 });
    for (let i = 0; i < 4; i++) {
      t += 4_000;
      p.tick(false);
    }
    expect(lines).toEqual(['3 of 10 episodes (30.0 %), 0.3/s, about 28 s left, 0 failed\n']);
    p.finish();
    expect(lines).toHaveLength(1);
  });

  it('says durations the way a person reads them', () => {
    expect([formatDuration(400), formatDuration(42_000), formatDuration(187_000), formatDuration(3_720_000)]).toEqual([
      '0.4 s',
      '42 s',
      '3 min 07 s',
      '1 h 02 min',
    ]);
  });
});
