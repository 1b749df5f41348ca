import { register } from 'node:module';

/**
 * Loads the `@tensorflow/tfjs-core/dist/….js` files imported below as the ES modules they are, and completes the
 * extensionless relative imports inside `@tensorflow/tfjs-core/dist/` (written for bundlers) with `.js`. Nothing
 * else is touched. Runs in Node's module-hooks thread, so it is plain JavaScript with no imports.
 */
const tfjsCoreEsmHook = `
export async function resolve(specifier, context, nextResolve) {
  if (specifier.startsWith('@tensorflow/tfjs-core/dist/') && specifier.endsWith('.js')) {
    return { ...(await nextResolve(specifier, context)), format: 'module' };
  }
  const fromTfjsCore = context.parentURL !== undefined && context.parentURL.includes('/@tensorflow/tfjs-core/dist/');
  if (fromTfjsCore && specifier.startsWith('.') && !specifier.endsWith('.js')) {
    return { ...(await nextResolve(specifier + '.js', context)), format: 'module' };
  }
  return nextResolve(specifier, context);
}`;

let registered: Promise<unknown> | null = null;

/**
 * Registers tfjs-core's gradients and chained tensor methods (`x.sum()`, …) once, into the shared engine.
 * tfjs-core ships both only in its ES module build, whose imports a bundler (vite, vitest, webpack) resolves as
 * written; under plain Node a resolve hook completes them. Those modules then share the engine, kernel registry
 * and Tensor class of the CommonJS copy through tfjs' globals.
 */
export function registerTfjsCoreExtras(): Promise<unknown> {
  registered ??= (async () => {
    register(`data:text/javascript,${encodeURIComponent(tfjsCoreEsmHook)}`);
    // What tfjs-core's Node entry (CommonJS) leaves out, and the @tensorflow/tfjs bundle would add.
    await import('@tensorflow/tfjs-core/dist/register_all_gradients.js');
    await import('@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops.js');
  })();
  return registered;
}
