import { Module, ModuleDict, copyModule } from '@peft-ts/core';

/**
 * PEFT's ModulesToSaveWrapper: the original module (frozen) plus one trainable full copy per
 * adapter; the active adapter's copy runs unless adapters are disabled or it has none.
 */
export class ModulesToSaveWrapper extends Module {
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
    return (this.activeModule.forward as (...values: unknown[]) => unknown)(...inputs);
  }
}
