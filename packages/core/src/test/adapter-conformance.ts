import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import type { TunerConfig, TunerModel } from '../adapter/tuner-model.js';
import type { TunerLayer } from '../adapter/tuner-layer.js';
import { describeWithBackends, maxAbsDifference } from './index.js';

/** The name the suite gives the second adapter, unlike any module name. */
const SECOND = 'conformance_second';

/** A fresh model with one adapter of the method under test, as the conformance suite needs it. */
export type AdapterConformanceSubject<CONFIG extends TunerConfig> = {
  /** The adapted model; its first adapter is `default`, trainable, and changes the output (not an identity init). */
  readonly tuner: TunerModel<CONFIG, TunerLayer>;
  /** A config for a second adapter on the same targets whose output differs from the first's. */
  readonly secondConfig: CONFIG;
  /** The model's forward on a fixed input (after mergeAndUnload too: the plain model is the same object). */
  run(): tf.Tensor;
};

export type AdapterConformanceOptions<CONFIG extends TunerConfig> = {
  /** Saves the adapters and loads them onto a fresh base model, for a method with a file format. */
  readonly roundTrip?: (tuner: TunerModel<CONFIG, TunerLayer>) => Promise<{ run(): tf.Tensor }>;
  /** Max-abs tolerance on outputs that should be equal up to rounding (merging reorders the float operations). */
  readonly tolerance?: number;
};

/** Trainable parameter names as `markTrainable` must leave them: exactly the adapter parameters of `adapterName`. */
function adapterParameterNames(tuner: TunerModel<TunerConfig, TunerLayer>, adapterName: string): string[] {
  const prefix = tuner.method.parameterPrefix;
  return tuner.model
    .namedParameters()
    .map(([name]) => name)
    .filter((name) => {
      const parts = name.split('.');
      return parts.some((part, index) => (part.startsWith(prefix) || part === 'modules_to_save') && parts[index + 1] === adapterName);
    });
}

/**
 * The behaviour every adapter method owes TunerModel's callers, checked on the method's own layers: add, set and
 * delete adapters, disabling, merging and unmerging, mergeAndUnload, what trains, and saving and loading.
 * `subject` builds a fresh model for each check; `options.roundTrip` adds a save/load check.
 */
export function describeAdapterConformance<CONFIG extends TunerConfig>(
  name: string,
  subject: () => AdapterConformanceSubject<CONFIG> | Promise<AdapterConformanceSubject<CONFIG>>,
  options: AdapterConformanceOptions<CONFIG> = {},
): void {
  const tolerance = options.tolerance ?? 1e-5;

  describeWithBackends(`${name} adapter conformance`, () => {
    it('adds an inactive adapter, switches to it, and deletes it back to the first', async () => {
      const { tuner, secondConfig, run } = await subject();
      const first = run();
      tuner.addAdapter(SECOND, secondConfig);
      expect(tuner.adapterNames).toEqual(['default', SECOND]);
      expect(tuner.activeAdapters).toEqual(['default']);
      expect(maxAbsDifference(run(), first)).toBe(0);
      expect(() => tuner.addAdapter(SECOND, secondConfig)).toThrow(/already exists/);
      await tuner.setAdapter(SECOND);
      expect(tuner.activeAdapter).toBe(SECOND);
      expect(maxAbsDifference(run(), first)).toBeGreaterThan(tolerance);
      await expect(tuner.setAdapter('missing')).rejects.toThrow(/missing does not exist/);
      tuner.deleteAdapter(SECOND);
      expect(tuner.adapterNames).toEqual(['default']);
      expect(tuner.activeAdapter).toBe('default');
      expect(tuner.adapterLayers().every(([, layer]) => !layer.hasAdapter(SECOND))).toBe(true);
      expect(tuner.model.namedParameters().filter(([parameter]) => parameter.split('.').includes(SECOND))).toEqual([]);
      expect(maxAbsDifference(run(), first)).toBe(0);
    });

    it('gives the base output with adapters disabled, and the adapted one after', async () => {
      const { tuner, run } = await subject();
      const adapted = run();
      const disabled = await tuner.withAdaptersDisabled(() => run());
      expect(maxAbsDifference(disabled, adapted)).toBeGreaterThan(tolerance);
      expect(maxAbsDifference(run(), adapted)).toBe(0);
      await tuner.unload();
      expect(maxAbsDifference(run(), disabled)).toBe(0);
    });

    it('keeps the output when merging, and restores the base weights when unmerging', async () => {
      const { tuner, run } = await subject();
      const adapted = run();
      const baseWeights = new Map([...tuner.adapterLayers()].map(([key, layer]) => [key, layer.baseLayer.stateDict()]));
      await tuner.mergeAdapter();
      expect(tuner.adapterLayers().every(([, layer]) => layer.mergedAdapters.includes('default'))).toBe(true);
      expect(maxAbsDifference(run(), adapted)).toBeLessThan(tolerance);
      expect(() => tuner.deleteAdapter('default')).toThrow(/merged/);
      await tuner.unmergeAdapter();
      expect(tuner.adapterLayers().some(([, layer]) => layer.isMerged)).toBe(false);
      expect(maxAbsDifference(run(), adapted)).toBeLessThan(tolerance);
      for (const [key, layer] of tuner.adapterLayers()) {
        for (const [weight, tensor] of layer.baseLayer.stateDict()) {
          expect([key, weight, maxAbsDifference(tensor, baseWeights.get(key)!.get(weight)!) < tolerance]).toEqual([key, weight, true]);
        }
      }
    });

    it('mergeAndUnload returns the plain model computing the adapted output', async () => {
      const { tuner, run } = await subject();
      const adapted = run();
      const plain = await tuner.mergeAndUnload();
      expect(plain).toBe(tuner.model);
      expect(tuner.adapterLayers()).toEqual([]);
      expect(plain.namedParameters().filter(([parameter]) => parameter.includes(tuner.method.parameterPrefix))).toEqual([]);
      expect(maxAbsDifference(run(), adapted)).toBeLessThan(tolerance);
    });

    it("trains exactly the active adapter's parameters", async () => {
      const { tuner, secondConfig } = await subject();
      const trainable = () => tuner.trainableParameters().map(([parameter]) => parameter);
      expect(adapterParameterNames(tuner, 'default').length).toBeGreaterThan(0);
      expect(trainable()).toEqual(adapterParameterNames(tuner, 'default'));
      tuner.addAdapter(SECOND, secondConfig);
      expect(trainable()).toEqual(adapterParameterNames(tuner, 'default'));
      await tuner.setAdapter(SECOND);
      expect(trainable()).toEqual(adapterParameterNames(tuner, SECOND));
    });

    const { roundTrip } = options;
    if (roundTrip) {
      it('saves and loads to the same output', async () => {
        const { tuner, run } = await subject();
        const adapted = run();
        const reloaded = await roundTrip(tuner);
        expect(maxAbsDifference(reloaded.run(), adapted)).toBeLessThan(tolerance);
      });
    }
  });
}
