import { appendFile, readFile } from 'node:fs/promises';
import { PeftError } from '@peft-ts/core';
import { writeTextFileAtomically } from '@peft-ts/core/internal';

/** One line of metrics.jsonl: what was logged and/or evaluated at a step (non-finite values are written as null). */
export type MetricsRecord = {
  readonly step: number;
  readonly epoch: number;
  readonly loss?: number;
  readonly learning_rate?: number;
  readonly grad_norm?: number;
  readonly tokens_per_second?: number;
  readonly eval_loss?: number;
  readonly eval_perplexity?: number;
};

/** metrics.jsonl: one JSON object per logged step, appended as training goes, so it survives a crash. */
export class MetricsLog {
  private constructor(readonly path: string) {}

  /**
   * Opens the log for appending. Records after `keepThroughStep` (the step a run resumes from; 0 for a fresh run)
   * are dropped, since the resumed run logs those steps again.
   */
  static async open(path: string, options: { keepThroughStep: number }): Promise<MetricsLog> {
    const kept =
      options.keepThroughStep > 0
        ? await MetricsLog.read(path).catch((error: NodeJS.ErrnoException) => {
            if (error.code === 'ENOENT') return [];
            throw error;
          })
        : [];
    const records = kept.filter((record) => record.step <= options.keepThroughStep);
    await writeTextFileAtomically(path, records.map((record) => `${JSON.stringify(record)}\n`).join(''));
    return new MetricsLog(path);
  }

  /**
   * The records of a metrics.jsonl file. A malformed last line is what a crash during an append leaves and is
   * skipped; a malformed line elsewhere is an error.
   */
  static async read(path: string): Promise<MetricsRecord[]> {
    const lines = (await readFile(path, 'utf8')).split('\n');
    const records: MetricsRecord[] = [];
    lines.forEach((line, index) => {
      if (line.trim() === '') return;
      try {
        records.push(JSON.parse(line) as MetricsRecord);
      } catch (error) {
        const isLast = lines.slice(index + 1).every((rest) => rest.trim() === '');
        if (!isLast) throw new PeftError(`${path}:${index + 1}: invalid JSON (${(error as Error).message})`);
      }
    });
    return records;
  }

  async append(record: MetricsRecord): Promise<void> {
    await appendFile(this.path, `${JSON.stringify(record)}\n`, 'utf8');
  }
}
