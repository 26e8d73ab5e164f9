"""Hand-written PyTorch twins of the example specs in `specs/`.

Each class builds, with plain `torch.nn`, the network its spec describes, under the same
module names, so `spec_model.load_state_dict(ref.state_dict())` works key for key (where
a name cannot match, `tests/test_specs.py` maps it) and outputs can be compared under the
same weights. Defaults equal the specs' defaults.

    GPTOutline        specs/gpt_outline.nn   (GPT)
    Seq2SeqTransformer specs/transformer.nn  (Transformer; wraps torch.nn.Transformer)
    Autoencoder       specs/autoencoder.nn
    Generator, Discriminator  specs/gan.nn
    Conv3dBlockNet, R2Plus1dBlockNet  specs/video.nn
    MultiTask         specs/multitask.nn
    DigitsCNN         specs/digits_cnn.nn
    CharRNN           specs/char_rnn.nn

The MLP of `specs/mlp.nn` is `tests/reference/mlp.py`'s; the attention and normalization
specs are compared with each other and with torch's own layers.
"""
from __future__ import annotations

import math

import torch
from torch import nn


# ---- specs/gpt_outline.nn ----
class OutlineAttention(nn.Module):
    def __init__(self, d: int, heads: int, p: float):
        super().__init__()
        self.qkv = nn.Linear(d, 3 * d)
        self.dropout = nn.Dropout(p)
        self.proj = nn.Linear(d, d)
        self.resid_dropout = nn.Dropout(p)
        self.d, self.heads = d, heads

    def forward(self, x):
        B, T, C = x.shape
        hs = C // self.heads
        q, k, v = self.qkv(x).split(self.d, dim=2)
        q, k, v = (t.view(B, T, self.heads, hs).transpose(1, 2) for t in (q, k, v))
        wei = q @ k.transpose(-2, -1) / math.sqrt(hs)
        wei = wei.masked_fill(torch.tril(torch.ones(T, T, device=x.device)) == 0, float("-inf"))
        wei = self.dropout(wei.softmax(dim=-1))
        y = (wei @ v).transpose(1, 2).reshape(B, T, C)
        return self.resid_dropout(self.proj(y))


class OutlineMLP(nn.Module):
    def __init__(self, d: int, p: float):
        super().__init__()
        self.fc = nn.Linear(d, 4 * d)
        self.relu = nn.ReLU()
        self.proj = nn.Linear(4 * d, d)
        self.dropout = nn.Dropout(p)

    def forward(self, x):
        return self.dropout(self.proj(self.relu(self.fc(x))))


class OutlineBlock(nn.Module):
    def __init__(self, d: int, heads: int, p: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(d)
        self.attn = OutlineAttention(d, heads, p)
        self.norm2 = nn.LayerNorm(d)
        self.mlp = OutlineMLP(d, p)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class GPTOutline(nn.Module):
    def __init__(self, vocab=256, block_size=64, d=128, heads=4, layers=4, p=0.1):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(block_size, d)
        self.dropout = nn.Dropout(p)
        self.blocks = nn.Sequential(*(OutlineBlock(d, heads, p) for _ in range(layers)))
        self.norm = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab)

    def forward(self, idx):
        T = idx.shape[1]
        x = self.dropout(self.pos(torch.arange(T, device=idx.device)) + self.tok(idx))
        return self.lm_head(self.norm(self.blocks(x)))


# ---- specs/transformer.nn ----
def sinusoids(n: int, d: int) -> torch.Tensor:
    """The paper's positional encoding (Vaswani et al. 2017, 3.5), written as its formula:
    PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(pos / 10000^(2i/d)); (n, d)."""
    pos = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    two_i = torch.arange(0, d, 2, dtype=torch.float64)
    angle = pos / 10000.0 ** (two_i / d)
    pe = torch.zeros(n, d, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe.float()


class Seq2SeqTransformer(nn.Module):
    """Token embeddings scaled by sqrt(d) plus the fixed sinusoidal positions, torch's own
    post-norm nn.Transformer, a linear generator."""

    def __init__(self, src_vocab=1000, tgt_vocab=1000, d=64, heads=4, ff=256, enc_layers=2, dec_layers=2,
                 p=0.1):
        super().__init__()
        self.src_tok = nn.Embedding(src_vocab, d)
        self.src_drop = nn.Dropout(p)
        self.tgt_tok = nn.Embedding(tgt_vocab, d)
        self.tgt_drop = nn.Dropout(p)
        self.transformer = nn.Transformer(d, heads, enc_layers, dec_layers, ff, p, batch_first=True)
        self.generator = nn.Linear(d, tgt_vocab)
        self.d = d
        self.scale = math.sqrt(d)

    def forward(self, src, tgt):
        S, T = src.shape[1], tgt.shape[1]
        s = self.src_drop(self.src_tok(src) * self.scale + sinusoids(S, self.d).to(src.device))
        t = self.tgt_drop(self.tgt_tok(tgt) * self.scale + sinusoids(T, self.d).to(tgt.device))
        mask = nn.Transformer.generate_square_subsequent_mask(T, device=tgt.device)
        return self.generator(self.transformer(s, t, tgt_mask=mask, tgt_is_causal=True))


# ---- specs/autoencoder.nn ----
class _Encoder(nn.Module):
    def __init__(self, latent):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.fc = nn.Linear(32 * 7 * 7, latent)

    def forward(self, x):
        return self.fc(torch.relu(self.conv2(torch.relu(self.conv1(x)))).flatten(1))


class _Decoder(nn.Module):
    def __init__(self, latent):
        super().__init__()
        self.fc = nn.Linear(latent, 32 * 7 * 7)
        self.deconv1 = nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1)
        self.deconv2 = nn.ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1)

    def forward(self, z):
        h = torch.relu(self.fc(z)).view(-1, 32, 7, 7)
        return torch.sigmoid(self.deconv2(torch.relu(self.deconv1(h))))


class Autoencoder(nn.Module):
    def __init__(self, latent=32):
        super().__init__()
        self.encoder = _Encoder(latent)
        self.decoder = _Decoder(latent)

    def forward(self, x):
        return self.decoder(self.encoder(x))


# ---- specs/gan.nn ----
class Generator(nn.Module):
    def __init__(self, nz=64, ngf=64):
        super().__init__()
        self.ngf = ngf
        self.fc = nn.Linear(nz, 2 * ngf * 7 * 7, bias=False)
        self.bn0 = nn.BatchNorm2d(2 * ngf)
        self.up1 = nn.ConvTranspose2d(2 * ngf, ngf, 4, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(ngf)
        self.up2 = nn.ConvTranspose2d(ngf, 1, 4, stride=2, padding=1)

    def forward(self, z):
        h = torch.relu(self.bn0(self.fc(z).view(-1, 2 * self.ngf, 7, 7)))
        h = torch.relu(self.bn1(self.up1(h)))
        return torch.tanh(self.up2(h))


class Discriminator(nn.Module):
    def __init__(self, ndf=64):
        super().__init__()
        self.conv1 = nn.Conv2d(1, ndf, 4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(ndf, 2 * ndf, 4, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(2 * ndf)
        self.fc = nn.Linear(2 * ndf * 7 * 7, 1)

    def forward(self, img):
        h = nn.functional.leaky_relu(self.conv1(img), 0.2)
        h = nn.functional.leaky_relu(self.bn2(self.conv2(h)), 0.2)
        return self.fc(h.flatten(1))


# ---- specs/video.nn ----
class _Conv3dBlock(nn.Module):
    def __init__(self, cin, cout, t=3, d=3):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, (t, d, d), padding=(t // 2, d // 2, d // 2), bias=False)
        self.bn = nn.BatchNorm3d(cout)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


def r2plus1d_mid_channels(cin: int, cout: int, t: int = 3, d: int = 3) -> int:
    """M of Tran et al. 2018: the (2+1)D block then has about the 3D block's parameters."""
    return (t * d * d * cin * cout) // (d * d * cin + t * cout)


class _R2Plus1dBlock(nn.Module):
    def __init__(self, cin, cout, t=3, d=3):
        super().__init__()
        mid = r2plus1d_mid_channels(cin, cout, t, d)
        self.spatial = nn.Conv3d(cin, mid, (1, d, d), padding=(0, d // 2, d // 2), bias=False)
        self.bn1 = nn.BatchNorm3d(mid)
        self.temporal = nn.Conv3d(mid, cout, (t, 1, 1), padding=(t // 2, 0, 0), bias=False)
        self.bn2 = nn.BatchNorm3d(cout)

    def forward(self, x):
        return torch.relu(self.bn2(self.temporal(torch.relu(self.bn1(self.spatial(x))))))


class Conv3dBlockNet(nn.Module):
    def __init__(self, cin=64, cout=128, t=3, d=3):
        super().__init__()
        self.res = _Conv3dBlock(cin, cout, t, d)

    def forward(self, clip):
        return self.res(clip)


class R2Plus1dBlockNet(nn.Module):
    def __init__(self, cin=64, cout=128, t=3, d=3):
        super().__init__()
        self.res = _R2Plus1dBlock(cin, cout, t, d)

    def forward(self, clip):
        return self.res(clip)


# ---- specs/multitask.nn ----
class _ConvBNReLU(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class MultiTask(nn.Module):
    def __init__(self, classes=10, width=32):
        super().__init__()
        w = width
        self.trunk = nn.Sequential(_ConvBNReLU(3, w), nn.MaxPool2d(2), _ConvBNReLU(w, 2 * w), nn.MaxPool2d(2),
                                   _ConvBNReLU(2 * w, 4 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.cls = nn.Linear(4 * w, classes)
        self.box_fc = nn.Linear(4 * w, 64)
        self.box_out = nn.Linear(64, 4)

    def forward(self, img):
        f = self.trunk(img)
        return {"logits": self.cls(f), "bbox": torch.sigmoid(self.box_out(torch.relu(self.box_fc(f))))}


# ---- specs/digits_cnn.nn ----
class DigitsCNN(nn.Module):
    def __init__(self, classes=10, p=0.25):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(p), nn.Linear(64 * 7 * 7, 64), nn.ReLU(),
                                        nn.Dropout(p), nn.Linear(64, classes))

    def forward(self, x):
        return self.classifier(self.features(x))


# ---- specs/char_rnn.nn ----
class CharRNN(nn.Module):
    def __init__(self, vocab=96, d=64, hidden=256, layers=2, p=0.2):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.lstm = nn.LSTM(d, hidden, num_layers=layers, dropout=p, batch_first=True)
        self.drop = nn.Dropout(p)
        self.decoder = nn.Linear(hidden, vocab)

    def forward(self, idx):
        out, _ = self.lstm(self.embed(idx))
        return self.decoder(self.drop(out))
