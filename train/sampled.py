"""Output losses for heads over many classes, cheaper than a full softmax: hierarchical
softmax, noise-contrastive estimation, negative sampling (`loss=` on a classify, lm or
seq2seq head; netspec.dsl.tasks.OUTPUT_LOSSES).

Each trains the head's last Linear layer, `out = h @ W.T + b` with W [C, d], without
computing all C scores: the trainer feeds it the layer's input h [N, d] and its targets [N].
Their parameters live in that layer, so the spec declares them and the state_dict keeps them:

- hierarchical softmax (Morin & Bengio 2005; word2vec): a Huffman tree over the classes,
  built from their training frequencies; inner node n (of C - 1) has the vector W[n] (and
  bias b[n]). p(class) is the product over its path of sigmoid(+-(h . W[n] + b[n])): a proper
  distribution, at a cost of the path's length (~log2 C) instead of C.
- nce (Gutmann & Hyvarinen 2010; Mnih & Teh 2012): the target against k noise classes drawn
  from q = unigram^0.75, each scored s - log(k q); the scores learn to be log-probabilities.
- negative_sampling (Mikolov et al. 2013): the same without the log(k q) correction:
  -log sigmoid(s_target) - sum log sigmoid(-s_noise). Its scores are not probabilities, but
  the vectors are good, and it is the cheapest.

W holds output class vectors for nce / negative sampling (the full logits stay meaningful),
but inner-node vectors for the hierarchical softmax, whose class scores are the tree's
log-probabilities (`scores`).
"""
from __future__ import annotations

import heapq
import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F

NOISE_POWER = 0.75  # word2vec's unigram^0.75: rare words drawn more often than their share
NOISE_TABLE = 1 << 20  # entries of the noise table: draws are one randint, as in word2vec's C code


def _score(h: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None, rows: torch.Tensor) -> torch.Tensor:
    """h [N, d] against the rows [N, ...] of W: [N, ...] scores (+ bias)."""
    s = torch.einsum("nd,n...d->n...", h, W[rows])
    return s + b[rows] if b is not None else s


# --------------------------------------------------------------------------
# Hierarchical softmax


@dataclass
class HuffmanTree:
    """A Huffman tree over C classes: class c's path from the root is the inner nodes
    nodes[c, :length[c]], turning to the child whose sign is signs[c, i] (+1 or -1)."""

    nodes: torch.Tensor  # [C, L] int64 inner node ids (0 .. C-2) along each path, padded with 0
    signs: torch.Tensor  # [C, L] float +1 / -1 per step, 0 past the path's end
    length: torch.Tensor  # [C] int64 path lengths (the code lengths)

    @classmethod
    def build(cls, counts) -> "HuffmanTree":
        """From class frequencies [C] (any non-negative numbers; C >= 2). Ties break by class
        order, so the same counts give the same tree."""
        counts = [float(c) for c in counts]
        C = len(counts)
        if C < 2:
            raise ValueError("a hierarchical softmax needs at least 2 classes")
        heap = [(c, i, i) for i, c in enumerate(counts)]  # (weight, tie-break, node); leaves are 0..C-1
        heapq.heapify(heap)
        parent, turn = [0] * (2 * C - 1), [0] * (2 * C - 1)
        nxt = C
        while len(heap) > 1:
            w0, _, a = heapq.heappop(heap)
            w1, _, b = heapq.heappop(heap)
            parent[a], turn[a] = nxt, -1.0  # the lighter child: sign -1
            parent[b], turn[b] = nxt, 1.0
            heapq.heappush(heap, (w0 + w1, nxt, nxt))
            nxt += 1
        root = nxt - 1
        paths = []
        for c in range(C):
            path, n = [], c
            while n != root:
                path.append((parent[n] - C, turn[n]))  # inner node k is W's row k
                n = parent[n]
            paths.append(path[::-1])
        L = max(len(p) for p in paths)
        nodes = torch.zeros(C, L, dtype=torch.int64)
        signs = torch.zeros(C, L)
        for c, p in enumerate(paths):
            if p:
                nodes[c, : len(p)] = torch.tensor([n for n, _ in p])
                signs[c, : len(p)] = torch.tensor([s for _, s in p])
        return cls(nodes, signs, torch.tensor([len(p) for p in paths]))

    def to(self, device) -> "HuffmanTree":
        return HuffmanTree(self.nodes.to(device), self.signs.to(device), self.length.to(device))

    _paths = None  # the sparse path matrix, built on first use (all_log_probs)

    def log_prob(self, h: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None, targets: torch.Tensor):
        """log p(target | h) [N] under the tree."""
        nodes, signs = self.nodes[targets], self.signs[targets]  # [N, L]
        s = _score(h, W, b, nodes)  # [N, L]
        return (F.logsigmoid(signs * s) * (signs != 0)).sum(1)

    def all_log_probs(self, h: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        """log p(c | h) for every class c: [N, C] (as costly as a full softmax; for validation)."""
        C = self.nodes.shape[0]
        s = F.linear(h, W[: C - 1], b[: C - 1] if b is not None else None)  # [N, C-1] every inner node
        turns = torch.cat([F.logsigmoid(-s), F.logsigmoid(s)], 1)  # [N, 2(C-1)]: each way at each node
        return torch.sparse.mm(self._path_matrix(), turns.T).T  # each class sums the turns on its path

    def _path_matrix(self) -> torch.Tensor:
        """Sparse [C, 2(C-1)]: row c has a 1 at (node, way) for every turn of class c's path."""
        if getattr(self, "_paths", None) is None:
            C = self.nodes.shape[0]
            keep = self.signs != 0  # row-major: each class's turns in path order
            cols = torch.where(self.signs > 0, self.nodes + (C - 1), self.nodes)[keep]
            crow = torch.cat([self.length.new_zeros(1), torch.cumsum(self.length, 0)])  # rows are in order
            with warnings.catch_warnings():  # "sparse CSR support is in beta": it is what makes this fast
                warnings.simplefilter("ignore")
                self._paths = torch.sparse_csr_tensor(crow, cols, torch.ones(len(cols), device=cols.device),
                                                      (C, 2 * (C - 1)))
        return self._paths


def hierarchical_softmax(h, W, b, targets, tree: HuffmanTree) -> torch.Tensor:
    """-log p(target) under the Huffman tree: one term per row of h [N, d]."""
    return -tree.log_prob(h, W, b, targets)


# --------------------------------------------------------------------------
# Noise: NCE and negative sampling


class Noise:
    """q = counts^0.75 (normalized) over C classes, drawn from a fixed table of ids."""

    def __init__(self, counts, power: float = NOISE_POWER, table: int = NOISE_TABLE):
        c = torch.as_tensor(counts, dtype=torch.float64).clamp(min=0)
        w = c.pow(power)
        self.q = (w / w.sum()).float()  # [C]
        self.log_q = self.q.clamp(min=1e-30).log()
        # class c fills about table * q[c] entries (word2vec's unigram table): one randint per draw
        edges = torch.cumsum(self.q.double(), 0)
        self.table = torch.searchsorted(edges, (torch.arange(table, dtype=torch.float64) + 0.5) / table)
        self.table = self.table.clamp(max=len(c) - 1)

    def to(self, device) -> "Noise":
        self.q, self.log_q, self.table = self.q.to(device), self.log_q.to(device), self.table.to(device)
        return self

    def draw(self, n: int, k: int) -> torch.Tensor:
        """[n, k] class ids from q (torch's global generator, which checkpoints restore)."""
        pick = torch.randint(len(self.table), (n, k), device="cpu").to(self.table.device)
        return self.table[pick]


def nce(h, W, b, targets, noise_ids: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Noise-contrastive estimation with k = noise_ids.shape[1] noise classes per row:
    -log sigmoid(s_t - log(k q_t)) - sum_j log sigmoid(-(s_j - log(k q_j))). One term per row."""
    log_k = math.log(noise_ids.shape[1])
    pos = _score(h, W, b, targets) - (log_k + log_q[targets])
    neg = _score(h, W, b, noise_ids) - (log_k + log_q[noise_ids])
    return -F.logsigmoid(pos) - F.logsigmoid(-neg).sum(1)


def negative_sampling(h, W, b, targets, noise_ids: torch.Tensor) -> torch.Tensor:
    """Mikolov et al.'s negative sampling: -log sigmoid(s_t) - sum_j log sigmoid(-s_j) over
    k = noise_ids.shape[1] noise classes per row. One term per row."""
    return -F.logsigmoid(_score(h, W, b, targets)) - F.logsigmoid(-_score(h, W, b, noise_ids)).sum(1)


# --------------------------------------------------------------------------
# One head's output loss


class OutputLoss:
    """A head's output loss over the Linear layer `layer`, with its state (a tree, a noise
    distribution) built from the classes' training frequencies `counts` [C] (None: uniform)."""

    NAMES = ("hierarchical_softmax", "nce", "negative_sampling")  # the output losses it implements

    def __init__(self, name: str, layer: torch.nn.Linear, counts=None, k: int = 5):
        self.name, self.layer, self.k = name, layer, k
        C = layer.out_features
        counts = torch.ones(C) if counts is None else torch.as_tensor(counts, dtype=torch.float64)[:C]
        if len(counts) < C:  # classes the data never names
            counts = torch.cat([counts, torch.zeros(C - len(counts), dtype=counts.dtype)])
        counts = counts.clamp(min=1)  # every class reachable, as word2vec's min_count guarantees
        device = layer.weight.device
        self.tree = HuffmanTree.build(counts.tolist()).to(device) if name == "hierarchical_softmax" else None
        self.noise = Noise(counts).to(device) if name in ("nce", "negative_sampling") else None

    def terms(self, h: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The loss of rows h [N, d] with their target classes [N]: [N] terms."""
        W, b = self.layer.weight, self.layer.bias
        h, W = h.float(), W.float()
        b = b.float() if b is not None else None
        if self.tree is not None:
            return hierarchical_softmax(h, W, b, targets, self.tree)
        noise = self.noise.draw(len(targets), self.k)
        if self.name == "nce":
            return nce(h, W, b, targets, noise, self.noise.log_q)
        return negative_sampling(h, W, b, targets, noise)

    def scores(self, h: torch.Tensor) -> torch.Tensor:
        """Class scores of h [..., d]: [..., C]. The tree's log-probabilities for the hierarchical
        softmax; the layer's own logits otherwise."""
        W, b = self.layer.weight.float(), self.layer.bias
        b = b.float() if b is not None else None
        if self.tree is None:
            return F.linear(h.float(), W, b)
        flat = h.float().reshape(-1, h.shape[-1])
        return self.tree.all_log_probs(flat, W, b).reshape(*h.shape[:-1], -1)
