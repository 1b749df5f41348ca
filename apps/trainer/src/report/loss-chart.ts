import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { MetricsRecord } from './metrics-log.js';

/**
 * Training and evaluation loss against the step as an SVG document, rendered headless (vega's SVG renderer needs no
 * canvas).
 */
export async function renderLossChart(records: readonly MetricsRecord[]): Promise<string> {
  const points = records.flatMap((record) => [
    ...(isFiniteNumber(record.loss) ? [{ step: record.step, loss: record.loss, series: 'training loss' }] : []),
    ...(isFiniteNumber(record.eval_loss) ? [{ step: record.step, loss: record.eval_loss, series: 'eval loss' }] : []),
  ]);
  const spec: TopLevelSpec = {
    width: 640,
    height: 300,
    background: 'white',
    data: { values: points },
    mark: { type: 'line', point: true, interpolate: 'linear' },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'step' },
      y: { field: 'loss', type: 'quantitative', title: 'loss', scale: { zero: false } },
      color: {
        field: 'series',
        type: 'nominal',
        title: null,
        scale: { domain: ['training loss', 'eval loss'], range: ['#1f77b4', '#d62728'] },
      },
    },
  };
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

function isFiniteNumber(value: number | undefined): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}
