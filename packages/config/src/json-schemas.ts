import { core, z } from 'zod';
import { bitsAndBytesConfigFileSchema } from './bits-and-bytes-config.js';
import { jsonSchemaIds } from './field-schemas.js';
import { loraConfigFileSchema } from './lora-config.js';
import { trainingConfigFileSchema } from './training-config.js';

const fileSchemas = {
  'lora-config.schema.json': loraConfigFileSchema,
  'bits-and-bytes-config.schema.json': bitsAndBytesConfigFileSchema,
  'training-config.schema.json': trainingConfigFileSchema,
};

/** Descriptions from zod's global registry, with this package's schema ids over them. */
class DocumentationRegistry extends core.$ZodRegistry<core.GlobalMeta> {
  override get(schema: core.$ZodType): core.GlobalMeta | undefined {
    const [documented, named] = [z.globalRegistry.get(schema), jsonSchemaIds.get(schema)];
    return documented || named ? { ...documented, ...named } : undefined;
  }
}

function toJsonSchema(schema: z.ZodType): Record<string, unknown> {
  return z.toJSONSchema(schema, {
    metadata: new DocumentationRegistry(),
    // The schemas describe files as written, before defaults are applied.
    io: 'input',
    override: ({ jsonSchema }) => {
      // zod bounds every integer by JavaScript's safe-integer range, which says nothing about the file format.
      if (jsonSchema.maximum === Number.MAX_SAFE_INTEGER) delete jsonSchema.maximum;
      if (jsonSchema.minimum === Number.MIN_SAFE_INTEGER) delete jsonSchema.minimum;
      // A schema registered with an id is moved to $defs under that id; the id member itself is not JSON Schema.
      delete (jsonSchema as Record<string, unknown>).id;
    },
  });
}

/** The JSON Schema documents of the snake_case file formats, by file name, as they are committed in docs/schemas. */
export function generateJsonSchemaFiles(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(fileSchemas).map(([fileName, schema]) => [fileName, `${JSON.stringify(toJsonSchema(schema), null, 2)}\n`]),
  );
}
