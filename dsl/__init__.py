"""netspec's language front end: text -> AST (with source spans) -> graph IR -> checks -> diagrams.

Nothing in this package imports torch, so parsing, checking and rendering stay fast
and testable on their own; `compiler/` adds torch for shapes, weights and training.
"""
