import { register } from 'node:module';

/**
 * Resolves the extensionless relative imports inside `@tensorflow/tfjs-core/dist/` (written for bundlers) as the
 * `.js` ES modules they are. Only imports made from tfjs-core's own ES module files are touched. Runs in Node's
 * module-hooks thread, so it is plain JavaScript with no imports.
 */
const tfjsCoreEsmHook = `
const inTfjsCoreDist = (url) => url.includes('/@tensorflow/tfjs-core/dist/');
export async function resolve(specifier, context, nextResolve) {
  const fromTfjsCore = context.parentURL !== undefined && inTfjsCoreDist(context.parentURL);
  if (fromTfjsCore && specifier.startsWith('.') && !specifier.endsWith('.js')) {
    return { ...(await nextResolve(specifier + '.js', context)), format: 'module' };
  }
  const resolved = await nextResolve(specifier, context);
  return specifier.endsWith('/register_all_gradients.js') && inTfjsCoreDist(resolved.url) ? { ...resolved, format: 'module' } : resolved;
}`;

let gradientsRegistered: Promise<unknown> | null = null;

/**
 * Registers tfjs-core's gradients (once) into the shared engine. `@tensorflow/tfjs-core`'s Node entry (CommonJS)
 * registers none; its ES module build does, in `dist/register_all_gradients.js`, whose imports only a bundler
 * (vite, vitest, webpack) resolves as they are written, so under plain Node a resolve hook completes them. The
 * gradient modules then share the engine and kernel registry of the CommonJS copy through tfjs' globals.
 */
export function registerGradients(): Promise<unknown> {
  gradientsRegistered ??= (async () => {
    register(`data:text/javascript,${encodeURIComponent(tfjsCoreEsmHook)}`);
    return import('@tensorflow/tfjs-core/dist/register_all_gradients.js');
  })();
  return gradientsRegistered;
}
