import { ModulePathError } from './errors.js';
import { Conv2d } from './layers/conv2d.js';
import { Embedding } from './layers/embedding.js';
import { Linear } from './layers/linear.js';
import { RMSNorm } from './layers/rms-norm.js';
import type { Module } from './module.js';
import { copyParameter } from './parameter.js';

type SharingClone = Module & { cloneSharingParameters(): Module };

/** A new module of the same structure whose parameters are the same Parameter objects. */
export function cloneSharingParameters(module: Module): Module {
  if ('cloneSharingParameters' in module && typeof module.cloneSharingParameters === 'function') {
    return (module as SharingClone).cloneSharingParameters();
  }
  let clone: Module;
  if (module instanceof Linear) {
    clone = new Linear(module.inFeatures, module.outFeatures, { bias: module.bias !== null, meta: true });
  } else if (module instanceof Embedding) {
    clone = new Embedding(module.numEmbeddings, module.embeddingDim, { paddingIndex: module.paddingIndex, meta: true });
  } else if (module instanceof Conv2d) {
    const { stride, padding, dilation, groups } = module.geometry;
    clone = new Conv2d(module.inChannels, module.outChannels, module.kernelSize, { stride, padding, dilation, groups, bias: module.bias !== null, meta: true });
  } else if (module instanceof RMSNorm) {
    clone = new RMSNorm(module.hiddenSize, module.eps, { meta: true });
  } else {
    throw new ModulePathError(`cannot copy a '${module.kind}' module: it has no cloneSharingParameters()`);
  }
  for (const [name, parameter] of module.directParameters()) clone.setParameter(name, parameter);
  clone.training = module.training;
  return clone;
}

type DeepCopying = Module & { deepCopy(): Module };

/**
 * A deep copy: same structure, every parameter copied (PyTorch `copy.deepcopy` of a module). A module with a
 * `deepCopy()` of its own (frozen half-precision layers give a trainable float copy) makes it.
 */
export function copyModule(module: Module): Module {
  if ('deepCopy' in module && typeof module.deepCopy === 'function') return (module as DeepCopying).deepCopy();
  const clone = cloneSharingParameters(module);
  for (const [, child] of clone.namedModules()) {
    for (const [name, parameter] of child.directParameters()) {
      child.setParameter(name, copyParameter(parameter));
    }
  }
  return clone;
}
