import { writeFully } from './file-io.js';
import type { SafetensorsMetadata } from './parse-header.js';
import { planSafetensorsLayout, type SafetensorsTensors } from './plan-layout.js';
import { encodeTensorData } from './tensor-data.js';
import { writeFileAtomically } from './write-file-atomically.js';

/**
 * Writes `tensors` to `path` atomically (a failure leaves any previous file intact). Tensors are streamed one at a
 * time, so memory use stays near the size of the largest converted tensor rather than the whole file.
 */
export async function writeSafetensors(
  path: string,
  tensors: SafetensorsTensors,
  metadata?: SafetensorsMetadata,
): Promise<void> {
  const layout = planSafetensorsLayout(tensors, metadata);
  await writeFileAtomically(path, async (handle) => {
    await writeFully(handle, layout.header);
    for (const { tensor } of layout.tensors) await writeFully(handle, encodeTensorData(tensor));
  });
}
