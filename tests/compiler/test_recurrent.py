"""LSTM and GRU with their state: `return_state=true` gives torch's whole result and a
second input sets the initial state. Compared with torch.nn.LSTM / GRU under the same
weights, and with a hand-written encoder-decoder (docs/LANGUAGE.md's Seq2SeqRNN)."""
import re
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

import netspec

DOC = Path(__file__).resolve().parents[2] / "docs" / "LANGUAGE.md"


def doc_example(model: str) -> str:
    found = [b for b in re.findall(r"```nn\n(.*?)```", DOC.read_text(), re.S) if f"model {model}(" in b]
    assert len(found) == 1
    return found[0]


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_state_in_and_out_equal_torchs(kind, bidirectional):
    lstm = kind == "LSTM"
    dirs = 2 if bidirectional else 1
    state_in = "(h0, c0)" if lstm else "h0"
    text = textwrap.dedent(f"""
        model M(d=6, hidden=10, layers=2):
            input x: float[B=3, T=5, d]
            input h0: float[layers * {dirs}, B, hidden]
            input c0: float[layers * {dirs}, B, hidden]
            rnn: {kind}(d, hidden, num_layers=layers, bidirectional={str(bidirectional).lower()},
                        return_state=true)(x, {state_in})
            out, state = rnn
            head y = out
            head h = state{"[0]" if lstm else ""}
            {"head c = state[1]" if lstm else "head c = c0 * 1"}
    """)
    model = netspec.build(text)
    torch.manual_seed(0)
    ref = getattr(nn, kind)(6, 10, num_layers=2, bidirectional=bidirectional, batch_first=True)
    assert list(model.state_dict()) == ["rnn." + k for k in ref.state_dict()]
    model.load_state_dict({"rnn." + k: v for k, v in ref.state_dict().items()})
    x, h0, c0 = torch.randn(3, 5, 6), torch.randn(2 * dirs, 3, 10), torch.randn(2 * dirs, 3, 10)
    got = model(x, h0, c0)
    want_out, want_state = ref(x, (h0, c0) if lstm else h0)
    torch.testing.assert_close(got["y"], want_out)
    torch.testing.assert_close(got["h"], want_state[0] if lstm else want_state)
    if lstm:
        torch.testing.assert_close(got["c"], want_state[1])
    assert model.netspec.heads[0].shape == (3, 5, 10 * dirs)


def test_without_return_state_a_recurrent_layer_gives_its_output_and_takes_a_state():
    model = netspec.build(textwrap.dedent("""
        model M():
            input x: float[B=2, T=4, 3]
            input h0: float[1, B, 5]
            GRU(3, 5)(x, h0)
            head y
    """))
    ref = nn.GRU(3, 5, batch_first=True)
    model.load_state_dict({"gru." + k: v for k, v in ref.state_dict().items()})
    x, h0 = torch.randn(2, 4, 3), torch.randn(1, 2, 5)
    torch.testing.assert_close(model(x, h0), ref(x, h0)[0])


class Seq2SeqRNN(nn.Module):
    """docs/LANGUAGE.md's Seq2SeqRNN by hand."""

    def __init__(self, src_vocab=32, tgt_vocab=32, d=16, hidden=32):
        super().__init__()
        self.src_emb = nn.Embedding(src_vocab, d)
        self.encoder = nn.LSTM(d, hidden, batch_first=True)
        self.tgt_emb = nn.Embedding(tgt_vocab, d)
        self.decoder = nn.LSTM(d, hidden, batch_first=True)
        self.generator = nn.Linear(hidden, tgt_vocab)

    def forward(self, src, tgt):
        _, state = self.encoder(self.src_emb(src))
        out, _ = self.decoder(self.tgt_emb(tgt), state)
        return self.generator(out)


def test_the_encoder_decoder_example_equals_its_hand_written_twin():
    model = netspec.build(doc_example("Seq2SeqRNN"))
    torch.manual_seed(0)
    ref = Seq2SeqRNN()
    assert list(model.state_dict()) == list(ref.state_dict())
    model.load_state_dict(ref.state_dict())
    src, tgt = torch.randint(0, 32, (2, 7)), torch.randint(0, 32, (2, 5))
    torch.testing.assert_close(model(src, tgt), ref(src, tgt))
    head = model.netspec.heads[0]
    assert (head.task, head.target) == ("lm", "tgt")


def test_stepping_with_the_state_equals_one_pass():
    step = netspec.build(doc_example("CharStep"))
    whole = nn.LSTM(8, 32, batch_first=True)
    whole.load_state_dict({k[len("lstm."):]: v for k, v in step.state_dict().items() if k.startswith("lstm.")})
    seq = torch.randint(0, 16, (1, 9))
    h = c = torch.zeros(1, 1, 32)
    logits = []
    for t in range(seq.shape[1]):
        out = step(seq[:, t:t + 1], h, c)
        logits.append(out["logits"])
        h, c = out["h_out"], out["c_out"]
    want, _ = whole(step.emb(seq))
    torch.testing.assert_close(torch.cat(logits, dim=1), step.fc(want))


def test_the_shapes_of_a_whole_result_nest_like_it():
    from netspec.compiler.summary import summarize
    a = netspec.analyze(doc_example("Seq2SeqRNN"))
    rows = {r["name"]: r for r in summarize(a)["layers"]}
    assert rows["encoder"]["shape"] == [[2, 7, 32], [[1, 2, 32], [1, 2, 32]]]
    assert rows["decoder"]["shape"] == [2, 5, 32]
