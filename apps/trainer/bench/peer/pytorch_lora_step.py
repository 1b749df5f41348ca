"""The peer figure for the adapters bench: PyTorch + PEFT on the same small config and batch.

Times a LoRA training step (r 8, alpha 16, the seven projections; forward, backward, plain SGD update of the
adapter weights) and a frozen base forward of transformers' MistralForCausalLM (vocab 8192, hidden 512,
intermediate 1536, 8 layers, 8 heads, 2 KV heads) at batch 4 x 256, fastest of a few runs after a warm-up, for
each thread count given. Prints one JSON line per figure, as the TypeScript benches do.

    python pytorch_lora_step.py [threads ...]        (default: 1 2)
"""
import json
import sys
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import MistralConfig, MistralForCausalLM

PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def fastest(body, repeats=3):
    body()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        body()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    thread_counts = [int(value) for value in sys.argv[1:]] or [1, 2]
    torch.manual_seed(1)
    config = MistralConfig(vocab_size=8192, hidden_size=512, intermediate_size=1536, num_hidden_layers=8,
                           num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=1024)
    for attention in ["eager", "sdpa"]:
        config._attn_implementation = attention
        base = MistralForCausalLM(config)
        for parameter in base.parameters():
            parameter.requires_grad_(False)
        model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules=PROJECTIONS, lora_dropout=0.0))
        input_ids = torch.randint(0, config.vocab_size, (4, 256))
        trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]

        def step():
            loss = model(input_ids=input_ids, labels=input_ids).loss
            loss.backward()
            with torch.no_grad():
                for parameter in trainable:
                    parameter -= 1e-4 * parameter.grad
                    parameter.grad = None

        def forward():
            with torch.no_grad(), model.disable_adapter():
                model(input_ids=input_ids)

        for threads in thread_counts:
            torch.set_num_threads(threads)
            context = f"torch {torch.__version__}, {threads} thread(s), {attention} attention"
            print(json.dumps({"name": "peer.base.forward", "value": fastest(forward), "unit": "s", "note": context}))
            print(json.dumps({"name": "peer.lora.train_step", "value": fastest(step), "unit": "s", "note": context}))
            matrix_a, matrix_b = torch.randn(1024, 512), torch.randn(512, 1536)
            seconds = fastest(lambda: matrix_a @ matrix_b, repeats=10)
            print(json.dumps({"name": "peer.matmul.ceiling", "value": 2 * 1024 * 512 * 1536 / seconds / 1e9, "unit": "GFLOP/s", "note": context}))


if __name__ == "__main__":
    main()
