import * as tf from '@tensorflow/tfjs-core';
import type { AdapterMethod } from './adapter/adapter-method.js';
import { TunerLayer } from './adapter/tuner-layer.js';
import { TunerModel, type TunerConfig } from './adapter/tuner-model.js';
import { Linear } from './layers/linear.js';
import { Module, ParameterDict } from './module.js';
import { Parameter } from './parameter.js';
import { manualSeed, nextSeed } from './random.js';
import { describeAdapterConformance } from './test/index.js';
import { isLinearLike, type LinearLike } from './weight-access.js';

/**
 * A method that is not LoRA, built on the tuner base classes alone: an (IA)³-style learned vector scaling each
 * output feature, `y = base(x)·l`. Bias-free bases only, so merging the vector into the weight rows is exact.
 */
class ScaleLayer extends TunerLayer<LinearLike> {
  readonly kind = 'scale_linear';
  readonly adapterLayerNames = ['scale_l'];

  constructor(base: LinearLike) {
    super(base);
    this.registerModule('scale_l', new ParameterDict());
  }

  private get vectors(): ParameterDict {
    return this.child<ParameterDict>('scale_l');
  }

  get adapterNames(): string[] {
    return this.vectors.keys();
  }

  addAdapter(adapterName: string): void {
    const vector = tf.randomUniform([this.baseLayer.outFeatures], 0.5, 1.5, 'float32', nextSeed());
    this.vectors.set(adapterName, new Parameter(vector));
    vector.dispose();
  }

  forward(input: tf.Tensor): tf.Tensor {
    if (this.adaptersDisabled || this.isMerged) return this.baseLayer.forward(input);
    return tf.tidy(() =>
      this.activeAdapters.filter((name) => this.hasAdapter(name)).reduce((output, name) => tf.mul(output, this.vector(name)), this.baseLayer.forward(input)),
    );
  }

  private vector(adapterName: string): tf.Tensor {
    return this.vectors.get(adapterName)!.value;
  }

  protected forgetAdapter(): void {}

  protected mergedWeight(adapterName: string, weight: tf.Tensor): tf.Tensor {
    return tf.mul(weight, tf.reshape(this.vector(adapterName), [-1, 1]));
  }

  protected unmergedWeight(adapterName: string, weight: tf.Tensor): tf.Tensor {
    return tf.div(weight, tf.reshape(this.vector(adapterName), [-1, 1]));
  }
}

const scaleMethod: AdapterMethod<TunerConfig> = {
  type: 'scale',
  parameterPrefix: 'scale_',
  dispatchers: [
    {
      supports: 'Linear, scale layers (another adapter)',
      create: ({ target, adapterName }) => {
        const layer = target instanceof ScaleLayer ? target : isLinearLike(target) ? new ScaleLayer(target) : undefined;
        if (!layer) return undefined;
        layer.addAdapter(adapterName);
        return layer;
      },
    },
  ],
};

class ScaleModel<MODEL extends Module> extends TunerModel<TunerConfig, ScaleLayer, MODEL> {
  protected isAdapterLayer(module: Module): module is ScaleLayer {
    return module instanceof ScaleLayer;
  }
}

class TwoLinears extends Module {
  readonly kind = 'two_linears';
  constructor() {
    super();
    this.registerModule('up', new Linear(5, 6, { bias: false }));
    this.registerModule('down', new Linear(6, 3, { bias: false }));
  }
  forward(input: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.child<Linear>('down').forward(tf.relu(this.child<Linear>('up').forward(input))));
  }
}

const config: TunerConfig = { targetModules: ['up', 'down'], inferenceMode: false };

describeAdapterConformance('a method built only on TunerModel/TunerLayer', () => {
  manualSeed(11);
  const model = new TwoLinears();
  const input = tf.randomNormal([4, 5], 0, 1, 'float32', 16);
  return { tuner: new ScaleModel(model, scaleMethod, config), secondConfig: config, run: () => model.forward(input) };
});
