/**
 * GPT-2's byte-to-character table: printable bytes map to themselves, the rest to code points
 * from 256 up, so any byte string becomes a string of visible characters (the ByteLevel
 * pre-tokenizer and decoder of Hugging Face tokenizers use the same table).
 */
function buildByteCharacters(): string[] {
  const printable = (byte: number) =>
    (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
  const characters: string[] = [];
  let next = 256;
  for (let byte = 0; byte < 256; byte++) characters.push(String.fromCodePoint(printable(byte) ? byte : next++));
  return characters;
}

export const byteCharacters: readonly string[] = buildByteCharacters();

/** The ByteLevel pre-tokenizer's split pattern (contractions, letters, digits, other, spaces). */
export const byteLevelPattern = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

const encoder = new TextEncoder();

/** Splits text as the ByteLevel pre-tokenizer does and maps each piece's UTF-8 bytes to characters. */
export function byteLevelWords(text: string): string[] {
  return (text.match(byteLevelPattern) ?? []).map((piece) => Array.from(encoder.encode(piece), (byte) => byteCharacters[byte]).join(''));
}
