import { describe, expect, it } from 'vitest';
import { ProgressBar } from './progress.js';

function stream(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, isTTY, columns: 120, write: (text: string) => writes.push(text) };
}

describe('ProgressBar', () => {
  it('redraws one line in place on a terminal, with step, loss, speed and ETA', () => {
    const terminal = stream(true);
    let time = 0;
    const bar = new ProgressBar(terminal, { label: 'training', total: 10, now: () => time });
    bar.update(0);
    time = 20_000;
    bar.update(4, { loss: 1.23456, tokensPerSecond: 1530 });
    time = 20_050; // within the redraw interval: skipped
    bar.update(5);
    expect(terminal.writes).toHaveLength(2);
    expect(terminal.writes[1]).toBe('\rtraining [##########--------------] 4/10 loss 1.2346 1.5k tok/s ETA 30s\x1b[K');
    bar.log('step 4: eval loss 1.1');
    expect(terminal.writes.slice(2, 4)).toEqual(['\r\x1b[K', 'step 4: eval loss 1.1\n']);
    expect(terminal.writes[4]).toMatch(/^\rtraining \[.*\] 5\/10/);
    time = 50_000;
    bar.update(10, { loss: 1 });
    bar.finish();
    expect(terminal.writes.at(-2)).toBe('\rtraining [########################] 10/10 loss 1.0000 done in 50s\x1b[K');
    expect(terminal.writes.at(-1)).toBe('\n');
  });

  it('measures the ETA from the first update, for a resumed run', () => {
    const terminal = stream(true);
    let time = 0;
    const bar = new ProgressBar(terminal, { label: 'training', total: 100, now: () => time });
    bar.update(50);
    time = 10_000;
    bar.update(60);
    expect(terminal.writes.at(-1)).toContain('ETA 40s');
  });

  it('prints only occasional plain lines when the stream is not a terminal', () => {
    const file = stream(false);
    let time = 0;
    const bar = new ProgressBar(file, { label: 'quantizing', total: 100, plainLineInterval: 30, now: () => time });
    for (let step = 1; step <= 100; step++) {
      time = step * 1000;
      bar.update(step);
    }
    bar.finish();
    expect(file.writes.every((line) => !line.includes('\r') && line.endsWith('\n'))).toBe(true);
    expect(file.writes).toEqual([
      'quantizing 1/100\n',
      'quantizing 31/100 ETA 1m09s\n',
      'quantizing 61/100 ETA 39s\n',
      'quantizing 91/100 ETA 9s\n',
      'quantizing 100/100 done in 1m40s\n',
    ]);
    const silent = stream(false);
    const quiet = new ProgressBar(silent, { label: 'loading', total: 3, plainLineInterval: 0 });
    quiet.update(1);
    quiet.update(2);
    expect(silent.writes).toEqual([]);
  });
});
