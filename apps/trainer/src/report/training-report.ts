import { join } from 'node:path';
import { writeTextFileAtomically } from '@peft-ts/core/internal';
import { formatDuration } from './format-duration.js';
import { renderLossChart } from './loss-chart.js';
import type { MetricsRecord } from './metrics-log.js';
import type { TrainingSummary } from './training-summary.js';

export const LOSS_CHART_FILE_NAME = 'loss.svg';
export const REPORT_FILE_NAME = 'report.html';

export type TrainingReport = { readonly summary: TrainingSummary; readonly records: readonly MetricsRecord[]; readonly title?: string };

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (character) => `&#${character.codePointAt(0)};`);

const format = (value: number | null | undefined, digits = 4) =>
  value === null || value === undefined || !Number.isFinite(value) ? 'n/a' : value.toFixed(digits);

/** A self-contained HTML page (inline SVG and style, no external URL): summary table, loss curves, evaluations. */
export function renderTrainingReport(report: TrainingReport, lossChartSvg: string): string {
  const { summary, records } = report;
  const title = report.title ?? 'peft-ts training report';
  const rows: [string, string][] = [
    ['status', summary.status],
    ['steps', `${summary.globalStep} / ${summary.maxSteps}`],
    ['epochs', summary.epoch.toFixed(2)],
    ['last training loss', format(summary.finalLoss)],
    ['mean training loss', format(summary.trainingLoss)],
    ['eval loss', format(summary.evalLoss)],
    ['eval perplexity', format(summary.evalPerplexity, 2)],
    ['best eval loss', format(summary.bestEvalLoss)],
    ['runtime', formatDuration(summary.runtimeSeconds)],
    ['tokens per second', summary.tokensPerSecond === null ? 'n/a' : String(Math.round(summary.tokensPerSecond))],
    ['last checkpoint', summary.lastCheckpoint ?? 'none'],
  ];
  const evaluations = records.filter((record) => record.eval_loss !== undefined);
  const table = (head: string[], body: string[][]) =>
    `<table><thead><tr>${head.map((cell) => `<th>${escapeHtml(cell)}</th>`).join('')}</tr></thead><tbody>${body
      .map((row) => `<tr>${row.map((cell) => `<td>${escapeHtml(cell)}</td>`).join('')}</tr>`)
      .join('')}</tbody></table>`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.75rem; text-align: left; }
th { background: #f3f3f3; }
</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<h2>Summary</h2>
${table(['metric', 'value'], rows)}
<h2>Loss</h2>
${lossChartSvg.replace(/^<\?xml[^>]*>\s*/, '')}
${
  evaluations.length
    ? `<h2>Evaluation</h2>\n${table(
        ['step', 'epoch', 'eval loss', 'perplexity'],
        evaluations.map((record) => [String(record.step), format(record.epoch, 2), format(record.eval_loss), format(record.eval_perplexity, 2)]),
      )}`
    : ''
}
</body>
</html>
`;
}

/** Writes loss.svg and report.html into `outputDir`; returns their paths. */
export async function writeTrainingReport(
  outputDir: string,
  report: TrainingReport,
): Promise<{ lossChartPath: string; reportPath: string }> {
  const lossChartSvg = await renderLossChart(report.records);
  const lossChartPath = join(outputDir, LOSS_CHART_FILE_NAME);
  const reportPath = join(outputDir, REPORT_FILE_NAME);
  await writeTextFileAtomically(lossChartPath, lossChartSvg);
  await writeTextFileAtomically(reportPath, renderTrainingReport(report, lossChartSvg));
  return { lossChartPath, reportPath };
}
