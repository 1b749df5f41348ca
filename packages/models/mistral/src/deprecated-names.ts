// The names these blocks had before they moved to @peft-ts/model-common, kept for one release.
import { DecoderAttention, DecoderStack, HfTokenizer, SwiGluMlp, TransformerDecoderLayer, type DecoderForwardInput } from '@peft-ts/model-common';

/** @deprecated Renamed `HfTokenizer` (`@peft-ts/model-common`): nothing in it is Mistral's. */
export const MistralTokenizer = HfTokenizer;
/** @deprecated Renamed `HfTokenizer` (`@peft-ts/model-common`). */
export type MistralTokenizer = HfTokenizer;
/** @deprecated Renamed `DecoderAttention` (`@peft-ts/model-common`). */
export const MistralAttention = DecoderAttention;
/** @deprecated Renamed `DecoderAttention` (`@peft-ts/model-common`). */
export type MistralAttention = DecoderAttention;
/** @deprecated Renamed `SwiGluMlp` (`@peft-ts/model-common`). */
export const MistralMLP = SwiGluMlp;
/** @deprecated Renamed `SwiGluMlp` (`@peft-ts/model-common`). */
export type MistralMLP = SwiGluMlp;
/** @deprecated Renamed `TransformerDecoderLayer` (`@peft-ts/model-common`); built from a `DecoderConfig` (`model.decoderConfig`). */
export const MistralDecoderLayer = TransformerDecoderLayer;
/** @deprecated Renamed `TransformerDecoderLayer` (`@peft-ts/model-common`). */
export type MistralDecoderLayer = TransformerDecoderLayer;
/** @deprecated Renamed `DecoderStack` (`@peft-ts/model-common`). */
export const MistralTransformer = DecoderStack;
/** @deprecated Renamed `DecoderStack` (`@peft-ts/model-common`). */
export type MistralTransformer = DecoderStack;
/** @deprecated Renamed `DecoderForwardInput` (`@peft-ts/model-common`). */
export type MistralForwardInput = DecoderForwardInput;
