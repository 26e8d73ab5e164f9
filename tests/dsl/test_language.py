"""Language semantics that need no torch: parsing, doc comments, imports, the stdlib by name."""
import textwrap

from netspec.dsl.frontend import elaborate
from netspec.dsl.parser import parse


def spec(text):
    return textwrap.dedent(text).lstrip()


def test_doc_comments_are_attached():
    mod = parse(spec("""
        ## File doc.

        ## The model.
        model M():
            ## the input
            input x: float[B=1, 4]
            fc: Linear(4, 4)  ## a layer
            head y
    """))
    d = mod.defs[0]
    assert mod.doc == "File doc." and d.doc == "The model."
    assert d.body[0].doc == "the input" and d.body[1].doc == "a layer"


def test_doc_comment_opening_a_body_documents_the_block():
    mod = parse(spec("""
        block B(d):
            ## What B does.
            fc: Linear(d, d)
            ## about the relu
            ReLU()
    """))
    b = mod.defs[0]
    assert b.doc == "What B does." and b.body[0].doc is None and b.body[1].doc == "about the relu"


def test_stdlib_import_by_name():
    c = elaborate(spec("""
        from resnet import BasicBlock
        model M():
            input x: float[B=1, 64, 8, 8]
            b: BasicBlock(64, 64)
            head y
    """))
    assert c.graph.op("b").block.name == "BasicBlock"
