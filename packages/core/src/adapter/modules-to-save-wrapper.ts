import { brandClass } from '@peft-ts/config/internal';
import { copyModule } from '../clone-module.js';
import { PeftError } from '../errors.js';
import { Module, ModuleDict } from '../module.js';
import { currentRowAdapters } from './row-adapters.js';

/**
 * PEFT's ModulesToSaveWrapper: the original module (frozen) plus one trainable full copy per
 * adapter; the active adapter's copy runs unless adapters are disabled or it has none.
 */
export class ModulesToSaveWrapper extends Module {
  static {
    brandClass(this, '@peft-ts/core:ModulesToSaveWrapper');
  }

  readonly kind = 'modules_to_save';
  activeAdapter: string | null = null;
  adaptersDisabled = false;

  constructor(original: Module) {
    super();
    this.registerModule('original_module', original);
    this.registerModule('modules_to_save', new ModuleDict());
  }

  get originalModule(): Module {
    return this.child('original_module');
  }

  private get copies(): ModuleDict {
    return this.child<ModuleDict>('modules_to_save');
  }

  get adapterNames(): string[] {
    return this.copies.keys();
  }

  copyFor(adapterName: string): Module | undefined {
    return this.copies.get(adapterName);
  }

  addAdapter(adapterName: string): void {
    if (!this.copies.get(adapterName)) this.copies.set(adapterName, copyModule(this.originalModule));
  }

  deleteAdapter(adapterName: string): void {
    this.copies.get(adapterName)?.dispose();
    this.copies.delete(adapterName);
    if (this.activeAdapter === adapterName) this.activeAdapter = null;
  }

  /** The module the forward pass uses now. */
  get activeModule(): Module {
    const copy = this.activeAdapter === null || this.adaptersDisabled ? undefined : this.copies.get(this.activeAdapter);
    return copy ?? this.originalModule;
  }

  forward(...inputs: unknown[]): unknown {
    const module = this.activeModule;
    const routing = currentRowAdapters();
    // PEFT 0.10 runs every row of a mixed batch through the active copy; refused when a row asks for another one.
    const wanted = this.adaptersDisabled ? [] : (routing?.names ?? []).map((name) => this.copies.get(name) ?? this.originalModule);
    if (wanted.some((other) => other !== module)) {
      throw new PeftError(
        'adapterNames: a mixed batch cannot pick modules_to_save copies per row (every row would run through the active adapter\'s copy); run the rows separately',
      );
    }
    return (module.forward as (...values: unknown[]) => unknown)(...inputs);
  }
}
