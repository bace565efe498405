"""Writes a tiny random-weight Hugging Face llama (LlamaForCausalLM + fast tokenizer) for vLLM.

Nothing is downloaded: the tokenizer is a byte-level BPE trained here on a built-in corpus, and the
weights come from a fixed seed, so the same arguments give the same model on every machine. The
output is gibberish; what matters is that a real vLLM loads it, tokenizes, applies the chat
template and decodes with it. Run with the vLLM venv's python (it has torch, transformers and
tokenizers): `python write-tiny-hf-llama.py --out DIR --seed 42 ...`.
"""

import argparse
import json
import os
import sys

# The corpus the BPE merges are learned from. ASCII only: every token of the vocabulary then decodes
# to whole ASCII characters, so any sequence the random model emits is valid UTF-8 and each
# generated token carries text (a byte-level vocabulary over all 256 bytes would let the model
# emit half a UTF-8 character, which servers hold back or replace).
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello, world! How are you today? I am fine, thank you.",
    "Once upon a time there was a small model that wrote random words.",
    "def main():\n    print('hello')\n    return 0\n",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 100 1000 2026.",
    "user assistant system tool message content role answer question",
    "A pool of engines serves tasks from a queue; each task streams tokens back to its client.",
    "Temporal workflows, activities, workers, signals, queries and updates.",
    "Say hi. Tell me a story. Count to ten. Write a poem about the sea.",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
]

# The constant of the hidden channel never_generate_special_tokens uses.
BIAS = 4.0

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]

# ChatML, as many small instruct models use it; `add_generation_prompt` opens the assistant turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def build_tokenizer(vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    # The byte-level alphabet's characters for tab, newline and printable ASCII.
    ascii_bytes = [9, 10] + list(range(32, 127))
    alphabet = [bytes_to_unicode()[b] for b in ascii_bytes]
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=alphabet,
        limit_alphabet=len(alphabet),
        show_progress=False,
    )
    # Repeated so that merges beyond single pairs reach the requested vocabulary size.
    tokenizer.train_from_iterator(CORPUS * 4, trainer=trainer)
    return tokenizer


def bytes_to_unicode():
    """GPT-2's byte → printable character table, which tokenizers' ByteLevel uses."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def never_generate_special_tokens(model, token_ids) -> None:
    """Random weights emit the end-of-sequence token every few hundred tokens, which would end a long task
    (a cancel test's) before it could be cancelled. Hidden dimension 0 is made a constant channel: every
    embedding holds BIAS there and no layer writes to it (its rows of o_proj and down_proj are zero), so
    after the final norm it is positive for every position; the special tokens' lm_head weight on it is
    strongly negative, so their logits sit far below every other token's and sampling never picks them."""
    import torch

    with torch.no_grad():
        model.model.embed_tokens.weight[:, 0] = BIAS
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight[0, :] = 0.0
            layer.mlp.down_proj.weight[0, :] = 0.0
        model.lm_head.weight[:, 0] = 0.0
        for token_id in token_ids:
            model.lm_head.weight[token_id, 0] = -1000.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    # vLLM 0.32's CPU attention supports head_dim 32, 64, 80, ...; 16 fails at the first decode
    # ("Unsupported CPU attention configuration: head_dim=16"), so the default is 128 / 2 = 64.
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--intermediate-size", type=int, default=256)
    parser.add_argument("--context-length", type=int, default=8192)
    parser.add_argument("--vocab-size", type=int, default=512)
    args = parser.parse_args()

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    raw = build_tokenizer(args.vocab_size)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token="<s>",
        eos_token="<|im_end|>",
        unk_token="<unk>",
        pad_token="</s>",
        model_max_length=args.context_length,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    vocab = len(tokenizer)

    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=args.hidden_size,
        intermediate_size=args.intermediate_size,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.heads,
        max_position_embeddings=args.context_length,
        # Wide weights: logits spread by several units, so greedy decoding has clear winners and
        # is not decided by rounding noise between near-equal logits.
        initializer_range=0.5,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        torch_dtype="float32",
    )
    torch.manual_seed(args.seed)
    model = LlamaForCausalLM(config)
    model.eval()
    never_generate_special_tokens(model, [tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS])
    os.makedirs(args.out, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    tokenizer.save_pretrained(args.out)
    # Some transformers versions put the template in chat_template.jinja only; vLLM reads either, and
    # tokenizer_config.json is where the brief (and older loaders) look.
    config_path = os.path.join(args.out, "tokenizer_config.json")
    with open(config_path, encoding="utf-8") as handle:
        tokenizer_config = json.load(handle)
    tokenizer_config["chat_template"] = CHAT_TEMPLATE
    with open(config_path, "w", encoding="utf-8") as handle:
        json.dump(tokenizer_config, handle, indent=2, sort_keys=True)
        handle.write("\n")
    print(json.dumps({"out": args.out, "vocab_size": vocab, "parameters": sum(p.numel() for p in model.parameters())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
