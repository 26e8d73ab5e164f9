// The VS Code side of `netspec lsp`: starts the server (the `netspec.command` setting,
// default `netspec lsp`) for .nn files; highlighting comes from syntaxes/ alone.
"use strict";
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace.getConfiguration("netspec").get("command");
  client = new LanguageClient(
    "netspec",
    "netspec",
    { command, args },
    { documentSelector: [{ scheme: "file", language: "netspec" }] }
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
