"""word2vec's ladder of losses, measured: does "softmax -> hierarchical softmax -> noise
contrastive estimation -> negative sampling" run from slowest to fastest here, and what does
each buy in the same time?

    .venv/bin/python bench/word2vec_losses.py                  # 4 losses x 120 s, then the probes
    .venv/bin/python bench/word2vec_losses.py --seconds 30 --probe-steps 40   # a quick look

Each loss trains specs/word2vec.nn's SkipGram (`--set loss=...`) on `--data pywords` through
netspec.train.train, the code of `netspec train`, for the same wall time (constant learning
rate after a short warm-up, so stopping on the clock cuts no schedule short). Then:

- words/s: training words (centre words) per second, over the steps after the first 10;
- probe loss: the quality figure, comparable across losses. The trained word vectors are frozen
  (rows L2-normalized) and a fresh full-softmax output layer is fitted on them for the same
  number of steps, the same batches, for each model, starting from the unigram distribution
  (zero weights, log-frequency biases); its validation cross-entropy (nats) of
  predicting a context word says how much the vectors know about their words' contexts. Lower
  is better. Two references: untrained vectors (the spec's initialization) and the unigram
  entropy (no vectors at all);
- the nearest neighbours (cosine) of a few words, to look at.

Not a test: it takes minutes. Times depend on the machine's load (run it alone).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import netspec  # noqa: E402
from netspec.train import RunConfig, train  # noqa: E402
from netspec.train.data import eval_batches, load_data  # noqa: E402

LOSSES = ("softmax", "hierarchical_softmax", "nce", "negative_sampling")
WORDS = ("file", "thread", "error", "list", "unicode", "socket")


class TimeUp(Exception):
    pass


def train_for(loss: str, seconds: float, args) -> tuple[torch.nn.Module, dict]:
    """Train one SkipGram for `seconds` of wall time; returns it and its speed."""
    torch.manual_seed(args.seed)
    model = netspec.build(str(REPO / "specs" / "word2vec.nn"), vocab=args.vocab, d=args.d, loss=loss)
    cfg = RunConfig(data="pywords", steps=10 ** 6, batch_size=args.batch, lr=args.lr, schedule="constant",
                    warmup_steps=10, weight_decay=0.0, eval_every=0, log_every=10 ** 6, seed=args.seed)
    stamps: list[float] = []
    start = time.time()

    def on_step(step, row):
        stamps.append(time.time())
        if stamps[-1] - start >= seconds:
            raise TimeUp

    try:
        train(model, cfg, None, None, progress=False, on_step=on_step)
    except TimeUp:
        pass
    steps = len(stamps)
    skip = min(10, steps - 2)
    rate = (steps - 1 - skip) * args.batch / max(1e-9, stamps[-1] - stamps[skip])
    return model, {"steps": steps, "words_per_s": rate, "words": steps * args.batch}


def probe(vectors: torch.Tensor, data, args) -> dict:
    """Fit a full-softmax output layer on frozen, L2-normalized vectors; its validation loss."""
    V, d = vectors.shape
    E = F.normalize(vectors.detach().float(), dim=1)
    head = torch.nn.Linear(d, V)
    with torch.no_grad():  # start from the unigram distribution: the probe learns only what the vectors add
        head.weight.zero_()
        head.bias.copy_(torch.as_tensor(data.counts, dtype=torch.float32).clamp(min=1).log())
    opt = torch.optim.Adam(head.parameters(), lr=args.probe_lr)
    g = torch.Generator().manual_seed(args.seed)
    for _ in range(args.probe_steps):
        b = data.train.batch(torch.randint(len(data.train), (args.batch,), generator=g).numpy(), 0)
        loss = F.cross_entropy(head(E[b["x"]]), b["y"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    total, n, top1 = 0.0, 0, 0
    with torch.no_grad():
        for b in eval_batches(data.val, args.batch, args.probe_val_batches, args.seed):
            logits = head(E[b["x"]])
            total += F.cross_entropy(logits, b["y"], reduction="sum").item()
            top1 += int((logits.argmax(1) == b["y"]).sum())
            n += len(b["y"])
    return {"probe_loss": total / n, "probe_top1": top1 / n}


def neighbours(vectors: torch.Tensor, vocab: list[str], k: int = 5) -> dict[str, list[str]]:
    E = F.normalize(vectors.detach().float(), dim=1)
    index = {w: i for i, w in enumerate(vocab)}
    out = {}
    for w in WORDS:
        if w in index:
            sims = E @ E[index[w]]
            sims[index[w]] = -2
            out[w] = [vocab[i] for i in sims.topk(k).indices.tolist()]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=120, help="training wall time per loss (default 120)")
    ap.add_argument("--vocab", type=int, default=20000)
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--probe-steps", type=int, default=150)
    ap.add_argument("--probe-lr", type=float, default=1e-2)
    ap.add_argument("--probe-val-batches", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("losses", nargs="*", default=list(LOSSES))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    info = netspec.build(str(REPO / "specs" / "word2vec.nn"), vocab=args.vocab, d=args.d).netspec
    data = load_data("pywords", info, RunConfig(seed=args.seed))
    counts = torch.as_tensor(data.counts, dtype=torch.float64)
    unigram = float(-(counts / counts.sum() * (counts / counts.sum()).log()).sum())
    print(f"pywords: {len(data.train):,} training / {len(data.val):,} validation words, vocabulary {args.vocab:,}; "
          f"d={args.d}, batch {args.batch}, {args.seconds:.0f} s per loss, torch threads {torch.get_num_threads()}")
    rows = []
    torch.manual_seed(args.seed)
    untrained = netspec.build(str(REPO / "specs" / "word2vec.nn"), vocab=args.vocab, d=args.d)
    rows.append(("untrained vectors", {"steps": 0, "words_per_s": float("nan"), "words": 0},
                 probe(untrained.embed.weight, data, args), {}))
    for loss in args.losses:
        model, speed = train_for(loss, args.seconds, args)
        print(f"{loss}: {speed['steps']} steps, {speed['words_per_s']:,.0f} words/s", flush=True)
        rows.append((loss, speed, probe(model.embed.weight, data, args), neighbours(model.embed.weight,
                                                                                    data.class_names)))
    base = next((r[1]["words_per_s"] for r in rows if r[0] == "softmax"), float("nan"))
    print(f"\n| loss | steps in {args.seconds:.0f} s | training words/s | vs softmax | probe val loss (nats) "
          f"| probe top-1 |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, s, p, _ in rows:
        speed = "—" if math.isnan(s["words_per_s"]) else f"{s['words_per_s']:,.0f}"
        ratio = "—" if math.isnan(s["words_per_s"]) or math.isnan(base) else f"{s['words_per_s'] / base:.1f}×"
        print(f"| {name} | {s['steps']:,} | {speed} | {ratio} | {p['probe_loss']:.3f} | {p['probe_top1']:.3f} |")
    print(f"| unigram (no vectors) | | | | {unigram:.3f} | |")
    trained = [(n, s["words_per_s"]) for n, s, _, _ in rows if n in LOSSES]
    order = [n for n, _ in sorted(trained, key=lambda t: t[1])]
    notes = [n for n in LOSSES if n in order]  # the notes' order of the losses this run trained
    print(f"\nslowest to fastest here: {' -> '.join(order)}"
          f"  (the notes: {' -> '.join(notes)}: {'held' if order == notes else 'did not hold'})")
    for name, _, _, nn in rows:
        if nn:
            print(f"\n{name}: " + "; ".join(f"{w}: {', '.join(ns)}" for w, ns in nn.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
