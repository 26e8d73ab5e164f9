"""`netspec lsp`: the language server, on pygls, speaking LSP over standard input/output.

Each open document is re-checked 0.3 s after the last keystroke (right away when opened
or saved), on one worker thread so the editor never waits on torch, and its diagnostics
are published; hover, definition, completion and formatting answer from the analysis of
the document's current text. Positions are 0-based here and 1-based in netspec.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from lsprotocol import types as T
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path

from ..dsl.errors import Diagnostic, Span
from ..dsl.tokens import Token, token_at
from .features import completion, definition, formatted, hover
from .snapshot import Snapshot, analyze_document

DEBOUNCE_S = 0.3  # wait this long after a change before checking again

_SEVERITY = {"error": T.DiagnosticSeverity.Error, "warning": T.DiagnosticSeverity.Warning,
             "note": T.DiagnosticSeverity.Information}
_KINDS = {"layer": T.CompletionItemKind.Class, "function": T.CompletionItemKind.Function,
          "block": T.CompletionItemKind.Module, "module": T.CompletionItemKind.File,
          "keyword": T.CompletionItemKind.Keyword, "argument": T.CompletionItemKind.Property,
          "task": T.CompletionItemKind.EnumMember, "dtype": T.CompletionItemKind.TypeParameter,
          "constant": T.CompletionItemKind.Constant}


class NetspecServer(LanguageServer):
    def __init__(self, version: str):
        super().__init__("netspec", version, text_document_sync_kind=T.TextDocumentSyncKind.Incremental)
        self.worker = ThreadPoolExecutor(max_workers=1)  # one analysis at a time: netspec keeps global caches
        self.snapshots: dict[str, tuple[str, Snapshot]] = {}  # uri -> (the text analyzed, its analysis)
        self.parsed: dict[str, Snapshot] = {}  # uri -> the last analysis of a text that parsed
        self.pending: dict[str, asyncio.Task] = {}
        self.extra_paths: list[str] = []

    def schedule(self, uri: str, delay: float) -> None:
        old = self.pending.pop(uri, None)
        if old is not None:
            old.cancel()
        self.pending[uri] = asyncio.get_running_loop().create_task(self._check(uri, delay))

    async def _check(self, uri: str, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.current(uri)

    async def current(self, uri: str) -> Snapshot:
        """The analysis of the document's current text (computed now if it is stale);
        publishes its diagnostics."""
        doc = self.workspace.get_text_document(uri)
        text = doc.source
        cached = self.snapshots.get(uri)
        if cached is not None and cached[0] == text:
            return cached[1]
        path = doc.path or uri
        snap = await asyncio.get_running_loop().run_in_executor(
            self.worker, lambda: analyze_document(text, path, extra_paths=self.extra_paths))
        self.snapshots[uri] = (text, snap)
        if snap.module is not None:
            self.parsed[uri] = snap
        self.text_document_publish_diagnostics(T.PublishDiagnosticsParams(
            uri=uri, version=doc.version, diagnostics=[to_lsp(d, snap) for d in snap.diagnostics]))
        return snap

    async def with_program(self, uri: str) -> Snapshot:
        """The current analysis, or while the text does not parse, the last one that did."""
        snap = await self.current(uri)
        return snap if snap.module is not None else self.parsed.get(uri, snap)


def _range(span: Span | None, tokens: list[Token]) -> T.Range:
    if span is None:
        return T.Range(T.Position(0, 0), T.Position(0, 0))
    start = T.Position(span.line - 1, span.col - 1)
    if span.end_line is not None and span.end_col is not None:
        return T.Range(start, T.Position(span.end_line - 1, span.end_col - 1))
    tok = token_at(tokens, span.line, span.col)
    end = tok.end_col if tok is not None and tok.type != "NEWLINE" and tok.line == span.line else span.col + 1
    return T.Range(start, T.Position(span.line - 1, end - 1))


def to_lsp(d: Diagnostic, snap: Snapshot) -> T.Diagnostic:
    """A netspec diagnostic in LSP terms. One located in another file (inside an imported
    block) is shown where this file uses it (a note naming the instantiation), else at the
    top; the original location comes along as related information."""
    here, message, tokens = d.span, d.message, snap.tokens
    related = [T.DiagnosticRelatedInformation(T.Location(from_fs_path(s.file), _range(s, [])), msg)
               for s, msg in d.notes if s is not None]
    if here is not None and here.file != snap.file:
        related.insert(0, T.DiagnosticRelatedInformation(T.Location(from_fs_path(here.file), _range(here, [])),
                                                         message))
        message = f"{here}: {message}"
        here = next((s for s, _ in d.notes if s is not None and s.file == snap.file), None)
    return T.Diagnostic(range=_range(here, tokens), message=message, severity=_SEVERITY[d.severity],
                        source="netspec", code=d.code, related_information=related or None)


def build_server(version: str) -> NetspecServer:
    server = NetspecServer(version)

    @server.feature(T.INITIALIZE)
    def initialize(ls: NetspecServer, params: T.InitializeParams):
        options = params.initialization_options or {}
        ls.extra_paths = list(options.get("path", [])) if isinstance(options, dict) else []

    @server.feature(T.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls: NetspecServer, params: T.DidOpenTextDocumentParams):
        ls.schedule(params.text_document.uri, 0)

    @server.feature(T.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: NetspecServer, params: T.DidChangeTextDocumentParams):
        ls.schedule(params.text_document.uri, DEBOUNCE_S)

    @server.feature(T.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls: NetspecServer, params: T.DidSaveTextDocumentParams):
        ls.snapshots.pop(params.text_document.uri, None)  # files it imports may have changed
        ls.schedule(params.text_document.uri, 0)

    @server.feature(T.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: NetspecServer, params: T.DidCloseTextDocumentParams):
        uri = params.text_document.uri
        task = ls.pending.pop(uri, None)
        if task is not None:
            task.cancel()
        ls.snapshots.pop(uri, None)
        ls.parsed.pop(uri, None)
        ls.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @server.feature(T.TEXT_DOCUMENT_HOVER)
    async def on_hover(ls: NetspecServer, params: T.HoverParams):
        snap = await ls.current(params.text_document.uri)
        text = hover(snap, params.position.line + 1, params.position.character + 1)
        return T.Hover(T.MarkupContent(T.MarkupKind.Markdown, text)) if text else None

    @server.feature(T.TEXT_DOCUMENT_DEFINITION)
    async def on_definition(ls: NetspecServer, params: T.DefinitionParams):
        snap = await ls.with_program(params.text_document.uri)
        spans = definition(snap, params.position.line + 1, params.position.character + 1)
        return [T.Location(params.text_document.uri if s.file == snap.file else from_fs_path(s.file),
                           _range(s, snap.tokens if s.file == snap.file else [])) for s in spans] or None

    @server.feature(T.TEXT_DOCUMENT_COMPLETION,
                    T.CompletionOptions(trigger_characters=["(", ",", ":", " "]))
    async def on_completion(ls: NetspecServer, params: T.CompletionParams):
        snap = await ls.with_program(params.text_document.uri)
        current = await ls.current(params.text_document.uri)
        if current is not snap:  # the text is mid-edit: positions are the current text's
            snap = Snapshot(current.file, current.text, current.tokens, snap.module, snap.program)
        items = completion(snap, params.position.line + 1, params.position.character + 1)
        return T.CompletionList(is_incomplete=False, items=[
            T.CompletionItem(label=i.label, kind=_KINDS.get(i.kind), detail=i.detail or None,
                             documentation=T.MarkupContent(T.MarkupKind.Markdown, i.doc) if i.doc else None,
                             insert_text=i.insert) for i in items])

    @server.feature(T.TEXT_DOCUMENT_FORMATTING)
    async def on_formatting(ls: NetspecServer, params: T.DocumentFormattingParams):
        doc = ls.workspace.get_text_document(params.text_document.uri)
        text = doc.source
        out = await asyncio.get_running_loop().run_in_executor(ls.worker, formatted, text, doc.path or doc.uri)
        if out is None:
            return []
        lines = text.split("\n")
        return [T.TextEdit(T.Range(T.Position(0, 0), T.Position(len(lines), 0)), out)]

    return server


def serve() -> None:
    import netspec
    build_server(netspec.__version__).start_io()
