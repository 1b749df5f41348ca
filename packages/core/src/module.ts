import type * as tf from '@tensorflow/tfjs-core';
import { brandClass } from '@peft-ts/config/internal';
import { ModulePathError, StateDictError } from './errors.js';
import { Parameter, sameShape } from './parameter.js';

export type NamedParameter = readonly [name: string, parameter: Parameter];
export type NamedModule = readonly [name: string, module: Module];

export type LoadStateDictResult = { missingKeys: string[]; unexpectedKeys: string[] };

/**
 * A PyTorch-style module: named parameters and child modules addressed by dotted paths
 * (`model.layers.0.self_attn.q_proj.weight`), so Hugging Face checkpoint keys and PEFT target
 * names apply unchanged. Subclasses read their children through `child()` at call time, which is
 * what makes replace-by-path (adapter injection) effective without the subclass knowing.
 */
export abstract class Module {
  static {
    brandClass(this, '@peft-ts/core:Module');
  }

  /** A short type tag adapters dispatch on ('linear', 'embedding', 'conv2d', …). */
  abstract readonly kind: string;
  training = true;
  private readonly parameterSlots = new Map<string, Parameter | null>();
  private readonly childSlots = new Map<string, Module>();

  abstract forward(...inputs: never[]): unknown;

  protected registerParameter(name: string, parameter: Parameter | null): Parameter | null {
    this.parameterSlots.set(name, parameter);
    return parameter;
  }

  protected registerModule<T extends Module>(name: string, module: T): T {
    this.childSlots.set(name, module);
    return module;
  }

  protected unregisterModule(name: string): void {
    this.childSlots.delete(name);
  }

  protected unregisterParameter(name: string): void {
    this.parameterSlots.delete(name);
  }

  /** The parameter registered directly on this module under `name`. */
  parameter(name: string): Parameter {
    const parameter = this.parameterSlots.get(name);
    if (!parameter) throw new ModulePathError(`${this.kind} has no parameter '${name}'`);
    return parameter;
  }

  hasParameter(name: string): boolean {
    return this.parameterSlots.get(name) != null;
  }

  /** Replaces (or adds) a directly registered parameter; used to share weights between modules. */
  setParameter(name: string, parameter: Parameter | null): void {
    this.parameterSlots.set(name, parameter);
  }

  child<T extends Module = Module>(name: string): T {
    const module = this.childSlots.get(name);
    if (!module) throw new ModulePathError(`${this.kind} has no child module '${name}'`);
    return module as T;
  }

  hasChild(name: string): boolean {
    return this.childSlots.has(name);
  }

  namedChildren(): NamedModule[] {
    return [...this.childSlots.entries()];
  }

  directParameters(): NamedParameter[] {
    const result: NamedParameter[] = [];
    for (const [name, parameter] of this.parameterSlots) if (parameter) result.push([name, parameter]);
    return result;
  }

  /** Every module in the tree, this one first (name ''), depth first, each object once. */
  namedModules(prefix = ''): NamedModule[] {
    const result: NamedModule[] = [];
    const seen = new Set<Module>();
    const visit = (module: Module, path: string) => {
      if (seen.has(module)) return;
      seen.add(module);
      result.push([path, module]);
      for (const [name, child] of module.childSlots) visit(child, path ? `${path}.${name}` : name);
    };
    visit(this, prefix);
    return result;
  }

  /**
   * Parameters with their dotted names. Shared parameters are listed once (first name), as
   * PyTorch's `named_parameters()` does, unless `includeShared` is set (as `state_dict()` does).
   */
  namedParameters(options: { includeShared?: boolean } = {}): NamedParameter[] {
    const result: NamedParameter[] = [];
    const seen = new Set<Parameter>();
    // A module reached twice is walked once, unless shared entries are wanted under every name.
    const visited = new Set<Module>();
    const visit = (module: Module, path: string) => {
      if (!options.includeShared && visited.has(module)) return;
      visited.add(module);
      for (const [name, parameter] of module.parameterSlots) {
        if (!parameter) continue;
        if (!options.includeShared && seen.has(parameter)) continue;
        seen.add(parameter);
        result.push([path ? `${path}.${name}` : name, parameter]);
      }
      for (const [name, child] of module.childSlots) visit(child, path ? `${path}.${name}` : name);
    };
    visit(this, '');
    return result;
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, parameter]) => parameter);
  }

  getSubmodule(path: string): Module {
    if (path === '') return this;
    let module: Module = this;
    for (const part of path.split('.')) {
      const next = module.childSlots.get(part);
      if (!next) throw new ModulePathError(`no module at '${path}': '${part}' not found under ${module.kind}`);
      module = next;
    }
    return module;
  }

  /** Replaces the module at a dotted path, e.g. to wrap `model.layers.0.self_attn.q_proj`. */
  setSubmodule(path: string, replacement: Module): void {
    const cut = path.lastIndexOf('.');
    const parent = this.getSubmodule(cut < 0 ? '' : path.slice(0, cut));
    const name = path.slice(cut + 1);
    if (!parent.childSlots.has(name)) {
      throw new ModulePathError(`no module at '${path}' to replace`);
    }
    parent.childSlots.set(name, replacement);
  }

  /** Every parameter tensor by name, shared ones under each of their names (PyTorch `state_dict()`). */
  stateDict(): Map<string, tf.Tensor> {
    const result = new Map<string, tf.Tensor>();
    for (const [name, parameter] of this.namedParameters({ includeShared: true })) {
      if (!parameter.isMeta) result.set(name, parameter.value);
    }
    return result;
  }

  /**
   * Copies tensors into the named parameters. Shape and dtype must match exactly. With `strict`
   * (the default) missing or unexpected keys are an error; every problem is listed at once.
   */
  loadStateDict(
    entries: ReadonlyMap<string, tf.Tensor> | Readonly<Record<string, tf.Tensor>>,
    options: { strict?: boolean; source?: string } = {},
  ): LoadStateDictResult {
    const strict = options.strict ?? true;
    const incoming = entries instanceof Map ? entries : new Map(Object.entries(entries));
    const own = new Map(this.namedParameters({ includeShared: true }));
    const missingKeys = [...own.keys()].filter((key) => !incoming.has(key));
    const unexpectedKeys = [...incoming.keys()].filter((key) => !own.has(key));
    const mismatched: string[] = [];
    for (const [key, tensor] of incoming) {
      const parameter = own.get(key);
      if (!parameter) continue;
      if (!sameShape(parameter.shape, tensor.shape) || parameter.dtype !== tensor.dtype) {
        mismatched.push(
          `${key}: expected ${parameter.dtype} [${parameter.shape}], got ${tensor.dtype} [${tensor.shape}]`,
        );
      }
    }
    const problems: string[] = [];
    if (mismatched.length) problems.push(`mis-shaped: ${mismatched.join('; ')}`);
    if (strict && missingKeys.length) problems.push(`missing: ${missingKeys.join(', ')}`);
    if (strict && unexpectedKeys.length) problems.push(`unexpected: ${unexpectedKeys.join(', ')}`);
    if (problems.length) {
      const where = options.source ? `${options.source}: ` : '';
      throw new StateDictError(
        `${where}state dict does not fit the module (${problems.join(' | ')})`,
        strict ? missingKeys : [],
        strict ? unexpectedKeys : [],
        mismatched,
      );
    }
    for (const [key, tensor] of incoming) own.get(key)?.set(tensor, key);
    return { missingKeys, unexpectedKeys };
  }

  train(mode = true): this {
    for (const [, module] of this.namedModules()) module.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Frees every parameter tensor of the tree (shared ones once). */
  dispose(): void {
    for (const parameter of this.parameters()) parameter.dispose();
  }
}

/** An indexable list of modules whose children are named '0', '1', … (PyTorch `ModuleList`). */
export class ModuleList<T extends Module = Module> extends Module {
  static {
    brandClass(this, '@peft-ts/core:ModuleList');
  }

  readonly kind: string = 'module_list';
  private count = 0;

  constructor(items: Iterable<T> = []) {
    super();
    for (const item of items) this.push(item);
  }

  get length(): number {
    return this.count;
  }

  push(item: T): void {
    this.registerModule(String(this.count), item);
    this.count += 1;
  }

  at(index: number): T {
    return this.child<T>(String(index));
  }

  toArray(): T[] {
    return Array.from({ length: this.count }, (_, index) => this.at(index));
  }

  [Symbol.iterator](): Iterator<T> {
    return this.toArray()[Symbol.iterator]();
  }

  forward(): never {
    throw new ModulePathError('a ModuleList has no forward of its own; call its items');
  }
}

/** Child modules keyed by name (PyTorch `ModuleDict`): one per adapter in adapter layers. */
export class ModuleDict<T extends Module = Module> extends Module {
  static {
    brandClass(this, '@peft-ts/core:ModuleDict');
  }

  readonly kind: string = 'module_dict';

  set(name: string, module: T): void {
    this.registerModule(name, module);
  }

  get(name: string): T | undefined {
    return this.hasChild(name) ? this.child<T>(name) : undefined;
  }

  delete(name: string): void {
    this.unregisterModule(name);
  }

  keys(): string[] {
    return this.namedChildren().map(([name]) => name);
  }

  forward(): never {
    throw new ModulePathError('a ModuleDict has no forward of its own; call its items');
  }
}

/** Parameters keyed by name (PyTorch `ParameterDict`): e.g. `lora_embedding_A.<adapter>`. */
export class ParameterDict extends Module {
  static {
    brandClass(this, '@peft-ts/core:ParameterDict');
  }

  readonly kind: string = 'parameter_dict';

  set(name: string, parameter: Parameter): void {
    this.registerParameter(name, parameter);
  }

  get(name: string): Parameter | undefined {
    return this.hasParameter(name) ? this.parameter(name) : undefined;
  }

  delete(name: string): void {
    this.unregisterParameter(name);
  }

  keys(): string[] {
    return this.directParameters().map(([name]) => name);
  }

  forward(): never {
    throw new ModulePathError('a ParameterDict has no forward of its own');
  }
}
