"""examples/fortune/train.py — trains the project's demo model: a small
Llama-architecture language model (dim 256, hidden 768, 4 layers, 8 heads,
4 KV heads, vocabulary 1024) with a byte-level BPE tokenizer, on a benign
subset of Debian's `fortunes` package (1:1.99.1-7.3; the offensive files are
in another package, fortunes-off, and a few more files are left out below).

It writes into OUT (default: this folder):
  model.safetensors   the weights in f16, under Hugging Face's LlamaForCausalLM names
  config.json         the LlamaConfig (transformers' own file)
  tokenizer.json      the tokenizer (Hugging Face `tokenizers`)
  reference.json      greedy continuations of a few prompts by `transformers`
                      (eager attention, f32, from the f16 weights as saved):
                      the oracle of tests/test_fortune.c
  train.log           the corpus hash, the settings, the loss curve

Run with Debian's torch and transformers 4.44.2 from PyPI, e.g.
  apt-get install fortunes python3-torch
  python3 -m venv --system-site-packages ENV && ENV/bin/pip install transformers==4.44.2
  ENV/bin/python3 examples/fortune/train.py [--steps N] [--out DIR]
The defaults reproduce the committed model: 800 steps on one thread, 22 minutes
here on a busy machine (one thread: OpenMP threads spin badly when cores are
shared). Deterministic for a given torch build
(fixed seeds, fixed data order), up to the floating-point order of threaded
matrix products.
"""
import argparse
import hashlib
import json
import math
import os
import sys
import time

import torch

FORTUNES = "/usr/share/games/fortunes"
# The benign files of Debian's `fortunes` package; left out: ascii-art (not
# text), drugs, ethnic, knghtbrd, men-women, medicine, politics, translate-me.
FILES = ["art", "computers", "cookie", "debian", "definitions", "education", "food", "fortunes", "goedel",
         "humorists", "kids", "law", "linux", "linuxcookie", "literature", "love", "magic", "miscellaneous",
         "news", "paradoxum", "people", "perl", "pets", "platitudes", "pratchett", "riddles", "science",
         "songs-poems", "sports", "startrek", "tao", "wisdom", "work", "zippy"]
MAX_CHARS = 600  # longer entries (essays, lists) are left out

CONFIG = dict(vocab_size=1024, hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=8,
              num_key_value_heads=4, max_position_embeddings=256, rms_norm_eps=1e-5, rope_theta=10000.0,
              tie_word_embeddings=False, bos_token_id=0, eos_token_id=1, hidden_act="silu")
PROMPTS = ["", "The", "A computer", "Q: What do you call", "Life is", "Never"]


def read_corpus():
    docs = []
    for name in FILES:
        with open(os.path.join(FORTUNES, name), encoding="utf-8", errors="replace") as f:
            text = f.read()
        for entry in text.split("\n%\n"):
            entry = entry.strip("\n").rstrip()
            if entry and entry != "%" and len(entry) <= MAX_CHARS:
                docs.append(entry)
    return docs


def train_tokenizer(docs):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=CONFIG["vocab_size"], special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(docs, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    assert tok.token_to_id("<s>") == 0 and tok.token_to_id("</s>") == 1
    return tok


def write_reference(out, tok, say):
    """reference.json: per prompt, greedy ids of `transformers` (the f16
    weights as saved, run in f32 with eager attention, no KV cache: the whole
    sequence at each step), the margin between the two best logits at each
    step (a near tie may resolve either way in another summation order) and
    the logits after the prompt."""
    from transformers import LlamaForCausalLM
    ref = LlamaForCausalLM.from_pretrained(out, torch_dtype=torch.float32, attn_implementation="eager").eval()
    cases = []
    with torch.no_grad():
        for prompt in PROMPTS:
            ids = tok.encode(prompt).ids
            seq, margins, first = list(ids), [], None
            for _ in range(48):
                logits = ref(input_ids=torch.tensor([seq])).logits[0, -1]
                top = torch.topk(logits, 2)
                margins.append(round(float(top.values[0] - top.values[1]), 6))
                if first is None:
                    first = [round(float(v), 6) for v in logits]
                seq.append(int(top.indices[0]))
            gen_ids = seq[len(ids):]
            cases.append({"prompt": prompt, "prompt_ids": ids, "greedy_ids": gen_ids, "margins": margins,
                          "text": tok.decode(seq), "logits_after_prompt": first})
            say("greedy %r -> %r" % (prompt, tok.decode(gen_ids)))
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump({"transformers": __import__("transformers").__version__, "torch": torch.__version__,
                   "cases": cases}, f, indent=None, separators=(",", ":"))
        f.write("\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--reference-only", action="store_true", help="rewrite reference.json from OUT's weights")
    a = ap.parse_args()
    if a.reference_only:
        from tokenizers import Tokenizer
        write_reference(a.out, Tokenizer.from_file(os.path.join(a.out, "tokenizer.json")), print)
        return 0
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(1234)
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    log = open(os.path.join(a.out, "train.log"), "w")

    def say(msg):
        print(msg)
        log.write(msg + "\n")
        log.flush()

    docs = read_corpus()
    corpus = "\n%\n".join(docs).encode("utf-8")
    say("corpus: %d fortunes, %d bytes, sha256 %s (files: %s; entries up to %d characters)" %
        (len(docs), len(corpus), hashlib.sha256(corpus).hexdigest(), " ".join(FILES), MAX_CHARS))
    tok = train_tokenizer(docs)
    tok.save(os.path.join(a.out, "tokenizer.json"))
    stream = []
    for enc in tok.encode_batch(docs):
        stream += enc.ids + [1]  # <s> (post-processor) ... </s>
    data = torch.tensor(stream, dtype=torch.long)
    say("tokens: %d (%.2f bytes per token)" % (len(stream), len(corpus) / len(stream)))

    cfg = LlamaConfig(**CONFIG, attn_implementation="eager")
    model = LlamaForCausalLM(cfg)
    say("model: %d parameters, %s" % (sum(p.numel() for p in model.parameters()), json.dumps(CONFIG)))
    say("training: %d steps, batch %d x %d tokens, AdamW lr %g (warm-up 50 steps, cosine to 10%%), %d threads" %
        (a.steps, a.batch, a.seq, a.lr, a.threads))
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.1)
    gen = torch.Generator().manual_seed(42)
    t0 = time.time()
    model.train()
    for step in range(a.steps):
        lr = a.lr * min(1.0, (step + 1) / 50) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / a.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        starts = torch.randint(0, len(stream) - a.seq - 1, (a.batch,), generator=gen)
        x = torch.stack([data[s:s + a.seq] for s in starts])
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 25 == 0 or step == a.steps - 1:
            say("step %5d  loss %.4f  lr %.2e  %.0f s" % (step, loss.item(), lr, time.time() - t0))

    model.eval()
    model.to(torch.float16).save_pretrained(a.out, safe_serialization=True)
    for extra in ("generation_config.json",):
        p = os.path.join(a.out, extra)
        if os.path.exists(p):
            os.remove(p)
    write_reference(a.out, tok, say)
    say("done in %.0f s" % (time.time() - t0))


if __name__ == "__main__":
    sys.exit(main())
