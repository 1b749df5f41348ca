import type { SafetensorsMetadata } from './parse-header.js';
import { planSafetensorsLayout, type SafetensorsTensors } from './plan-layout.js';
import { encodeTensorData } from './tensor-data.js';

/** The bytes of a safetensors file holding `tensors`, identical to what the reference writer produces. */
export function serializeSafetensors(tensors: SafetensorsTensors, metadata?: SafetensorsMetadata): Uint8Array {
  const layout = planSafetensorsLayout(tensors, metadata);
  const output = new Uint8Array(layout.byteLength);
  output.set(layout.header);
  for (const { tensor, begin } of layout.tensors) output.set(encodeTensorData(tensor), layout.header.byteLength + begin);
  return output;
}
