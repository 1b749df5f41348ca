import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatDuration } from './format-duration.js';
import { MetricsLog, type MetricsRecord } from './metrics-log.js';
import { writeTrainingReport } from './training-report.js';
import { formatTrainingSummary, type TrainingSummary } from './training-summary.js';

/** Checks that tags nest and close properly (what an XML parser would reject first), returning the tag names. */
function wellFormedTags(markup: string): string[] {
  const open: string[] = [];
  const seen: string[] = [];
  const body = markup.replace(/<!--[\s\S]*?-->/g, '').replace(/<!DOCTYPE[^>]*>/i, '');
  for (const [, closing, name, selfClosing] of body.matchAll(/<(\/?)([a-zA-Z][\w:-]*)[^>]*?(\/?)>/g)) {
    seen.push(name);
    if (closing) expect(open.pop(), `closing </${name}>`).toBe(name);
    else if (!selfClosing && !['meta', 'br'].includes(name)) open.push(name);
  }
  expect(open).toEqual([]);
  return seen;
}

const summary: TrainingSummary = {
  status: 'completed',
  globalStep: 30,
  maxSteps: 30,
  epoch: 3,
  trainingLoss: 1.5,
  finalLoss: 1.25,
  evalLoss: 1.3,
  evalPerplexity: Math.exp(1.3),
  bestEvalLoss: 1.3,
  runtimeSeconds: 192,
  tokensPerSecond: 1234.4,
  lastCheckpoint: 'runs/<first>/checkpoint-30',
  bestCheckpoint: null,
};

const records: MetricsRecord[] = Array.from({ length: 30 }, (_, index) => ({
  step: index + 1,
  epoch: (index + 1) / 10,
  loss: 3 / (index + 1) + 1,
  learning_rate: 2e-4,
  grad_norm: 0.5,
  tokens_per_second: 1000,
  ...((index + 1) % 10 === 0 ? { eval_loss: 4 / (index + 1) + 1.2, eval_perplexity: Math.exp(4 / (index + 1) + 1.2) } : {}),
}));

let directory = '';
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'peft-ts-report-'));
});
afterAll(() => rm(directory, { recursive: true, force: true }));

describe('MetricsLog', () => {
  it('appends one JSON object per line, and on resume keeps only the steps up to the checkpoint', async () => {
    const path = join(directory, 'metrics.jsonl');
    const log = await MetricsLog.open(path, { keepThroughStep: 0 });
    for (const record of records.slice(0, 5)) await log.append(record);
    await log.append({ step: 6, epoch: 0.6, loss: NaN });
    const lines = (await readFile(path, 'utf8')).trimEnd().split('\n');
    expect(lines).toHaveLength(6);
    expect(JSON.parse(lines[0])).toEqual(records[0]);
    expect(JSON.parse(lines[5])).toEqual({ step: 6, epoch: 0.6, loss: null });
    // A crash mid-append leaves half a line at the end.
    await writeFile(path, `${await readFile(path, 'utf8')}{"step": 7, "ep`);
    expect(await MetricsLog.read(path)).toHaveLength(6);
    await MetricsLog.open(path, { keepThroughStep: 3 });
    expect(await MetricsLog.read(path)).toEqual(records.slice(0, 3));
    await MetricsLog.open(path, { keepThroughStep: 0 });
    expect(await readFile(path, 'utf8')).toBe('');
  });
});

describe('training report', () => {
  it('writes loss.svg as a well-formed SVG with both curves, and a self-contained report.html', async () => {
    const { lossChartPath, reportPath } = await writeTrainingReport(directory, { summary, records });
    const svg = await readFile(lossChartPath, 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('xmlns="http://www.w3.org/2000/svg"');
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    const tags = wellFormedTags(svg);
    expect(tags.filter((tag) => tag === 'path').length).toBeGreaterThan(2);
    expect(svg).toContain('training loss');
    expect(svg).toContain('eval loss');

    const html = await readFile(reportPath, 'utf8');
    wellFormedTags(html);
    expect(html).toContain('<svg');
    // Self-contained: no URL other than the SVG namespace identifiers.
    const urls = [...html.matchAll(/(?:https?:)?\/\/[\w.-]+[^\s"'<>)]*/g)].map(([url]) => url);
    expect(urls.every((url) => url.startsWith('http://www.w3.org/'))).toBe(true);
    expect(html).not.toMatch(/<(script|link|img)\b/);
    expect(html).toContain('<td>mean training loss</td><td>1.5000</td>');
    expect(html).toContain('runs/&#60;first&#62;/checkpoint-30');
    // One evaluation row per evaluated step.
    expect(html).toContain('<td>30</td><td>3.00</td><td>1.3333</td>');
  });

  it('renders an empty chart when nothing was logged yet', async () => {
    const { lossChartPath } = await writeTrainingReport(directory, { summary, records: [] });
    wellFormedTags(await readFile(lossChartPath, 'utf8'));
  });

  it('summarises a run in a few console lines', () => {
    expect(formatTrainingSummary(summary)).toBe(
      [
        'training completed: step 30/30, epoch 3.00, 3m12s, 1234 tokens/s',
        'loss 1.2500 (mean 1.5000), eval loss 1.3000 (perplexity 3.67), best 1.3000',
        'last checkpoint: runs/<first>/checkpoint-30',
      ].join('\n'),
    );
    expect([5, 59.6, 61, 3600 + 125].map(formatDuration)).toEqual(['5s', '1m00s', '1m01s', '1h02m']);
  });
});
